"""Reading policies for staff: the console's list, one policy and its attachments, and the
per-policy figures (addressed, delivered, read, acknowledged) with the per-dealer table."""
from sqlalchemy import func, select

from app.audience import service as audiences
from app.dealers.addresses import region_texts
from app.dealers.models import Dealer, DealerUser
from app.extensions import db
from app.kernel.errors import NotFound
from app.policies.models import (
    Policy,
    PolicyAck,
    PolicyAttachment,
    PolicyDelivery,
    PolicyRead,
    PolicyReminder,
)

STAFF_PAGE_SIZE = 30
STATS_PAGE_SIZE = 50


def current_attachments(policy):
    """The policy's attachments not removed, in the order they were added."""
    return db.session.execute(
        select(PolicyAttachment).where(PolicyAttachment.policy_id == policy.id, PolicyAttachment.removed_at.is_(None))
        .order_by(PolicyAttachment.id)
    ).scalars().all()


def list_policies_for_staff(*, status=None, category=None, q=None, page=1):
    """(rows, total): policies newest first, each with its audience in words."""
    query = select(Policy)
    if status:
        query = query.where(Policy.status == status)
    if category:
        query = query.where(Policy.category == category)
    if q:
        query = query.where(Policy.title.contains(q, autoescape=True))
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(
        query.order_by(Policy.updated_at.desc(), Policy.id.desc()).limit(STAFF_PAGE_SIZE)
        .offset((page - 1) * STAFF_PAGE_SIZE)
    ).scalars().all()
    found = audiences.load_many("policy", [p.id for p in rows])
    return [(p, audiences.describe(found.get(p.id, audiences.Audience()))) for p in rows], total


def get_policy_for_staff(policy_id):
    policy = db.session.get(Policy, policy_id)
    if policy is None:
        raise NotFound("政策不存在", "policy_not_found")
    return policy


def get_attachment_for_staff(policy_id, attachment_id):
    attachment = db.session.execute(
        select(PolicyAttachment).where(PolicyAttachment.id == attachment_id, PolicyAttachment.policy_id == policy_id)
    ).scalar_one_or_none()
    if attachment is None:
        raise NotFound("附件不存在", "attachment_not_found")
    return attachment


def policy_stats(policy_id, *, show="", page=1):
    """Per-policy figures and the per-dealer table, all about the current version.

    addressed: dealers in the audience now (active or suspended); delivered: those of them
    pushed the current version; read: those of them with a user who opened it; acked: those
    of them who acknowledged it. `left`: dealers delivered an earlier push who are no longer
    addressed (they no longer see the policy; not counted above). Rows are the addressed
    dealers, filtered by `show` ("unread" / "unacked").
    """
    policy = get_policy_for_staff(policy_id)
    version = policy.version
    audience = audiences.load("policy", policy.id)
    addressed = audiences.dealer_ids(audience)
    addressed_set = set(addressed)
    delivered = dict(db.session.execute(
        select(PolicyDelivery.dealer_id, PolicyDelivery.delivered_at)
        .where(PolicyDelivery.policy_id == policy.id, PolicyDelivery.version == version)
    ).all())
    reads = {}
    for dealer_id, read_at, name in db.session.execute(
        select(PolicyRead.dealer_id, PolicyRead.read_at, DealerUser.name)
        .join(DealerUser, DealerUser.id == PolicyRead.user_id)
        .where(PolicyRead.policy_id == policy.id, PolicyRead.version >= version).order_by(PolicyRead.read_at)
    ).all():
        reads.setdefault(dealer_id, (read_at, name))
    acks = {dealer_id: (at, name) for dealer_id, at, name in db.session.execute(
        select(PolicyAck.dealer_id, PolicyAck.acked_at, DealerUser.name)
        .join(DealerUser, DealerUser.id == PolicyAck.user_id)
        .where(PolicyAck.policy_id == policy.id, PolicyAck.version == version)
    ).all()}
    reminded = dict(db.session.execute(
        select(PolicyReminder.dealer_id, func.max(PolicyReminder.reminded_at))
        .where(PolicyReminder.policy_id == policy.id).group_by(PolicyReminder.dealer_id)
    ).all())
    figures = {
        "addressed": len(addressed),
        "delivered": len(addressed_set & set(delivered)),
        "read": len(addressed_set & set(reads)),
        "acked": len(addressed_set & set(acks)),
        "left": len(set(db.session.execute(
            select(PolicyDelivery.dealer_id).where(PolicyDelivery.policy_id == policy.id)
        ).scalars()) - addressed_set),
    }
    if show == "unread":
        wanted = [d for d in addressed if d not in reads]
    elif show == "unacked":
        wanted = [d for d in addressed if d not in acks] if policy.ack_required else []
    else:
        wanted = addressed
    total = len(wanted)
    page_ids = wanted[(page - 1) * STATS_PAGE_SIZE: page * STATS_PAGE_SIZE]
    dealers = {d.id: d for d in db.session.execute(select(Dealer).where(Dealer.id.in_(page_ids))).scalars()}
    regions = region_texts(dealer.region_code for dealer in dealers.values())
    rows = [
        {"dealer": dealers[d], "region": regions[dealers[d].region_code], "delivered_at": delivered.get(d),
         "read": reads.get(d), "acked": acks.get(d), "reminded_at": reminded.get(d)}
        for d in page_ids
    ]
    return {"policy": policy, "audience": audience, "figures": figures, "rows": rows, "total": total}
