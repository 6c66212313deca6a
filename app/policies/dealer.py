"""Policies for dealers: what is addressed to a dealer now, opening one (recorded as read),
acknowledging it.

Reading: opening a policy in the mini-program records a `PolicyRead` per dealer user at
the version seen. The mini-program's read flag and unread count are per user (each person
has their own badge); the console counts a dealer as having read the current version when
any of its users opened it. Acknowledgement binds the dealer (one row per dealer and
version, by an owner or buyer; read-only users may not acknowledge).
"""
from sqlalchemy import and_, case, exists, func, select

from app.audience import service as audiences
from app.database import dialect_insert, write_transaction
from app.dealers.models import ORDERING_ROLES
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.policies.models import (
    CATEGORY_LABELS,
    Policy,
    PolicyAck,
    PolicyAttachment,
    PolicyRead,
    PolicyVersion,
)


def _visible(dealer):
    """SQL condition: the policy is published and addressed to `dealer` now."""
    return and_(
        Policy.status == "published",
        audiences.visible_condition("policy", Policy.id, dealer_code=dealer.code, tier_code=dealer.tier.code,
                                    region_code=dealer.region_code),
    )


def _read_flag(user):
    return exists().where(PolicyRead.policy_id == Policy.id, PolicyRead.user_id == user.id,
                          PolicyRead.version >= Policy.version)


def _acked_flag(user):
    return exists().where(PolicyAck.policy_id == Policy.id, PolicyAck.dealer_id == user.dealer_id,
                          PolicyAck.version == Policy.version)


def list_for_dealer(*, user, category=None, page=1, page_size=20):
    """(items, total, unread): the published policies addressed to the user's dealer now,
    unread (by this user, at the current version) first, then newest. `unread` ignores `category`."""
    dealer = user.dealer
    read, acked = _read_flag(user), _acked_flag(user)
    where = [_visible(dealer)]
    if category:
        where.append(Policy.category == category)
    total = db.session.execute(select(func.count(Policy.id)).where(*where)).scalar_one()
    rows = db.session.execute(
        select(Policy.id, Policy.title, Policy.category, Policy.published_at, Policy.version, Policy.ack_required,
               read.label("read"), acked.label("acked"))
        .where(*where).order_by(case((read, 1), else_=0), Policy.published_at.desc(), Policy.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).mappings().all()
    items = [{**row, "category_label": CATEGORY_LABELS[row["category"]], "read": bool(row["read"]),
              "acked": bool(row["acked"])} for row in rows]
    return items, total, unread_count(user)


def unread_count(user):
    """How many policies addressed to the user's dealer this user has not opened at their current version."""
    return db.session.execute(
        select(func.count(Policy.id)).where(_visible(user.dealer), ~_read_flag(user))
    ).scalar_one()


def _visible_policy(session, user, policy_id, *, lock=False):
    query = select(Policy).where(Policy.id == policy_id, _visible(user.dealer))
    if lock:  # NO KEY UPDATE, see `authoring.lock_policy`
        query = query.with_for_update(key_share=True)
    policy = session.execute(query).scalar_one_or_none()
    if policy is None:  # unknown, unpublished, withdrawn and not addressed all look alike
        raise NotFound("政策不存在或已撤回", "policy_not_found")
    return policy


def open_for_dealer(*, user, policy_id):
    """The latest version of a policy addressed to the user's dealer, marking it read by this
    user at that version. 404 `policy_not_found` for anything the dealer may not see.
    Returns (policy, version row, acked)."""
    with write_transaction() as session:
        policy = _visible_policy(session, user, policy_id)
        _mark_read(session, policy, user, utcnow())
        version = session.execute(
            select(PolicyVersion).where(PolicyVersion.policy_id == policy.id, PolicyVersion.version == policy.version)
        ).scalar_one()
        acked = _has_acked(session, policy, user.dealer_id)
    return policy, version, acked


def _has_acked(session, policy, dealer_id):
    return session.execute(
        select(PolicyAck.id).where(PolicyAck.policy_id == policy.id, PolicyAck.dealer_id == dealer_id,
                                   PolicyAck.version == policy.version)
    ).first() is not None


def acknowledge(*, user, policy_id):
    """Acknowledge the current version for the user's dealer (owner or buyer). Idempotent: a
    second call returns the first acknowledgement. 404 as `open_for_dealer`; 409
    `ack_not_required` when the policy asks for none; 403 for a read-only user.
    Returns the `PolicyAck`."""
    with write_transaction() as session:
        policy = _visible_policy(session, user, policy_id, lock=True)
        if not policy.ack_required:
            raise DomainError("ack_not_required", "该政策无需确认", 409)
        if user.role not in ORDERING_ROLES:
            raise DomainError("forbidden_role", "您的账号为只读角色，不能确认政策，请由负责人或采购员确认", 403)
        ack = session.execute(
            select(PolicyAck).where(PolicyAck.policy_id == policy.id, PolicyAck.dealer_id == user.dealer_id,
                                    PolicyAck.version == policy.version)
        ).scalar_one_or_none()
        if ack is None:
            now = utcnow()
            ack = PolicyAck(policy_id=policy.id, dealer_id=user.dealer_id, version=policy.version, user_id=user.id,
                            acked_at=now)
            session.add(ack)
            _mark_read(session, policy, user, now)  # acknowledging implies having read it
    return ack


def _mark_read(session, policy, user, now):
    """Record that `user` has seen the policy's current version (one row per user, upserted,
    so two requests at once from the same user cannot collide)."""
    table = PolicyRead.__table__
    stmt = dialect_insert(session, table).values(
        policy_id=policy.id, dealer_id=user.dealer_id, user_id=user.id, version=policy.version,
        first_read_at=now, read_at=now,
    )
    session.execute(stmt.on_conflict_do_update(
        index_elements=[table.c.policy_id, table.c.user_id], set_={"version": policy.version, "read_at": now},
    ))


def attachment_rows(version):
    """{id: PolicyAttachment} for the attachments a version lists."""
    ids = [a["id"] for a in version.attachments]
    if not ids:
        return {}
    return {a.id: a for a in db.session.execute(select(PolicyAttachment).where(PolicyAttachment.id.in_(ids))).scalars()}
