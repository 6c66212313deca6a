"""Policies: the one place that creates, publishes, versions and withdraws them, and that
records what dealers did with them.

Staff side (`policies.edit` edits; `policies.view` may look): `create_policy`,
`update_policy`, `schedule_policy` / `unschedule_policy`, `publish_policy`,
`withdraw_policy`, `remind_stragglers`; the scheduler runs `publish_due_policies`.
Each is one write transaction with its audit entry and its outbox rows.

Versions: the first publication is version 1. Saving a published policy with a change a
dealer can see (title, category, body, effective dates, attachments, acknowledgement)
publishes version n+1 at once, with the changes computed by `content.changes`; dealers
see the latest version and its 「本次更新」. An acknowledgement is for one version, so a
dealer who acknowledged v1 must acknowledge v2 again when it requires acknowledgement.
Changing only the audience of a published policy makes no new version; dealers who join
the audience get the current version delivered.

Delivery: publishing a version writes, for every dealer in the audience at that moment
(active or suspended), a `PolicyDelivery` row, a message-list entry and subscribe messages
to its users who consented (`dealer_alerts.notify_dealers`), plus one announcement to the
internal WeCom group robot. A dealer who joins the audience later (say moved to another
tier) sees the policy at once — the audience is evaluated now — and counts as addressed,
but was not pushed anything, so it is not counted as delivered until the next version.

Reading: opening a policy in the mini-program records a `PolicyRead` per dealer user at
the version seen. The mini-program's read flag and unread count are per user (each person
has their own badge); the console counts a dealer as having read the current version when
any of its users opened it. Acknowledgement binds the dealer (one row per dealer and
version, by an owner or buyer; read-only users may not acknowledge).
"""
import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, select, update

from app.audience import service as audiences
from app.audit import service as audit
from app.database import dialect_insert, write_transaction
from app.dealers.models import ORDERING_ROLES, Dealer, DealerUser
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import BUSINESS_TZ, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.permissions import require
from app.notify import dealer_alerts
from app.notify import service as outbox
from app.notify.rep_alerts import clip, text_message
from app.policies import content
from app.policies.models import (
    CATEGORY_LABELS,
    STATUS_LABELS,
    Policy,
    PolicyAck,
    PolicyAttachment,
    PolicyDelivery,
    PolicyRead,
    PolicyReminder,
    PolicyVersion,
)
from app.staff.models import Staff
from app.storage import StorageError, get_storage

log = logging.getLogger(__name__)

STAFF_PAGE_SIZE = 30
STATS_PAGE_SIZE = 50
REMIND_COOLDOWN = timedelta(minutes=30)
MP_PAGE = "pages/policy/detail?id={policy_id}"


class SystemActor:
    """The scheduler, as an audit actor."""

    id = None
    name = "定时任务"


# --- reading what staff typed ----------------------------------------------------------

def parse_fields(form):
    """The policy's fields from a form (dict-like): title, category, body (HTML, sanitised),
    effective_from/effective_to (YYYY-MM-DD, optional), ack_required (checkbox). 422 naming the field."""
    title = inputs.text(form.get("title"), field="title", label="标题", max_len=100)
    category = inputs.choice(form.get("category"), field="category", label="分类", choices=CATEGORY_LABELS)
    body_html = content.clean_html(form.get("body"))
    if not content.body_text(body_html) and "<img" not in body_html:
        raise inputs.invalid("body", "正文不能为空")
    start = inputs.day(form.get("effective_from"), field="effective_from", label="生效日期", required=False)
    end = inputs.day(form.get("effective_to"), field="effective_to", label="截止日期", required=False)
    if start and end and end < start:
        raise inputs.invalid("effective_to", "截止日期不能早于生效日期")
    ack = form.get("ack_required")
    ack = ack if isinstance(ack, bool) else str(ack or "").strip().lower() in ("1", "on", "true", "yes")
    return {"title": title, "category": category, "body_html": body_html, "effective_from": start,
            "effective_to": end, "ack_required": ack}


def parse_publish_at(value):
    """A China-time 'YYYY-MM-DDTHH:MM' (a datetime-local input) as an aware datetime."""
    try:
        return datetime.strptime((value or "").strip(), "%Y-%m-%dT%H:%M").replace(tzinfo=BUSINESS_TZ)
    except ValueError:
        raise inputs.invalid("publish_at", "发布时间格式应为 YYYY-MM-DD HH:MM") from None


# --- attachments: bytes go to storage before the transaction, out again if it fails -----------

def _store_files(files):
    """[(filename, bytes)] -> [dict of PolicyAttachment columns], the bytes stored.
    Every file is checked before any is stored."""
    checked = [(data, *content.check_attachment(data, filename)) for filename, data in files]
    storage = get_storage()
    stored = []
    try:
        for data, content_type, filename in checked:
            key = storage.put(data, content_type, "policies")
            stored.append({"storage_key": key, "filename": filename, "content_type": content_type,
                           "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    except StorageError:
        _unstore(stored)
        log.exception("storing a policy attachment failed")
        raise DomainError("storage_unavailable", "附件存储暂时不可用，请稍后重试", 503) from None
    return stored


def _unstore(stored):
    for row in stored:
        try:
            get_storage().delete(row["storage_key"])
        except Exception:
            log.exception("could not delete stored object %s", row["storage_key"])


def _with_files(files, work):
    stored = _store_files(files or [])
    try:
        return work(stored)
    except BaseException:
        _unstore(stored)
        raise


# --- staff: create, edit, schedule, publish, withdraw -----------------------------------------

def _check_editor(staff):
    require(staff, "policies.edit", "你的角色无权修改政策")


def _lock(session, policy_id):
    # FOR NO KEY UPDATE: dealers' reads and acknowledgements (their foreign keys take KEY SHARE
    # on the policy row) go on while staff act; FOR UPDATE would make them wait, or deadlock.
    policy = session.execute(
        select(Policy).where(Policy.id == policy_id).with_for_update(key_share=True)
    ).scalar_one_or_none()
    if policy is None:
        raise NotFound("政策不存在", "policy_not_found")
    return policy


def _snapshot(policy):
    return {
        "title": policy.title, "category": policy.category, "body_html": policy.body_html,
        "effective_from": policy.effective_from, "effective_to": policy.effective_to,
        "ack_required": policy.ack_required,
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in current_attachments(policy)],
    }


def current_attachments(policy):
    return db.session.execute(
        select(PolicyAttachment).where(PolicyAttachment.policy_id == policy.id, PolicyAttachment.removed_at.is_(None))
        .order_by(PolicyAttachment.id)
    ).scalars().all()


def _audit_view(snapshot, audience=None):
    view = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in snapshot.items() if k != "body_html"}
    view["attachments"] = [a["filename"] for a in snapshot["attachments"]]
    view["body_sha256"] = hashlib.sha256(snapshot["body_html"].encode()).hexdigest()[:16]
    if audience is not None:
        view["audience"] = audience.to_dict()
    return view


def _same_audience(a, b):
    return (a.all_dealers, set(a.tiers), set(a.regions), set(a.dealers)) == (
        b.all_dealers, set(b.tiers), set(b.regions), set(b.dealers))


def create_policy(*, staff, fields, audience, files=()):
    """A new draft policy. `fields` from `parse_fields`, `audience` an `Audience`, `files`
    [(filename, bytes)]. Raises 403 for a role that may not edit, 413/422 for a bad file."""
    _check_editor(staff)
    if len(files) > content.MAX_ATTACHMENTS:
        raise DomainError("too_many_files", f"每个政策最多 {content.MAX_ATTACHMENTS} 个附件", 422)

    def work(stored):
        with write_transaction() as session:
            now = utcnow()
            policy = Policy(**fields, status="draft", version=0, created_by_id=staff.id, created_at=now, updated_at=now)
            session.add(policy)
            session.flush()
            for row in stored:
                session.add(PolicyAttachment(policy_id=policy.id, created_at=now, **row))
            audiences.save(session, "policy", policy.id, audience)
            session.flush()
            audit.record(session, actor=staff, action="policy.create", entity_type="policy", entity_id=policy.id,
                         label=policy.title, after=_audit_view(_snapshot(policy), audience))
        return policy

    return _with_files(files, work)


def update_policy(*, staff, policy_id, fields, audience, files=(), remove_attachment_ids=()):
    """Save the edit form. A draft or scheduled policy just changes; a published one publishes
    a new version when a dealer-visible field changed (and delivers it), or — when only the
    audience changed — delivers the current version to dealers newly in the audience.
    Returns (policy, new version number or None). 409 for a withdrawn policy."""
    _check_editor(staff)

    def work(stored):
        with write_transaction() as session:
            policy = _lock(session, policy_id)
            if policy.status == "withdrawn":
                raise DomainError("policy_withdrawn", "政策已撤回，不能再修改", 409)
            now = utcnow()
            before = _snapshot(policy)
            old_audience = audiences.load("policy", policy.id, session=session)
            removing = {int(i) for i in remove_attachment_ids}
            for attachment in current_attachments(policy):
                if attachment.id in removing:
                    attachment.removed_at = now
            for row in stored:
                session.add(PolicyAttachment(policy_id=policy.id, created_at=now, **row))
            session.flush()
            if len(current_attachments(policy)) > content.MAX_ATTACHMENTS:
                raise DomainError("too_many_files", f"每个政策最多 {content.MAX_ATTACHMENTS} 个附件", 422)
            for name, value in fields.items():
                setattr(policy, name, value)
            policy.updated_at = now
            audiences.save(session, "policy", policy.id, audience)
            session.flush()
            after = _snapshot(policy)
            new_version = None
            if policy.status == "published":
                changed = content.changes(before, after, CATEGORY_LABELS)
                if changed:
                    new_version = _publish_version(session, policy, actor=staff, changes=changed, now=now)
                elif not _same_audience(audience, old_audience):
                    _deliver(session, policy, now=now)
            if before == after and _same_audience(audience, old_audience) and not new_version:
                return policy, None
            audit.record(session, actor=staff, action="policy.update", entity_type="policy", entity_id=policy.id,
                         label=policy.title, before=_audit_view(before, old_audience),
                         after={**_audit_view(after, audience), "version": policy.version})
        return policy, new_version

    return _with_files(files, work)


def schedule_policy(*, staff, policy_id, publish_at):
    """Publish a draft at `publish_at` (an aware datetime in the future); a scheduled one is re-timed."""
    _check_editor(staff)
    with write_transaction() as session:
        policy = _lock(session, policy_id)
        if policy.status not in ("draft", "scheduled"):
            raise DomainError("policy_not_draft", "只有草稿可以定时发布", 409)
        if publish_at <= utcnow():
            raise inputs.invalid("publish_at", "发布时间必须晚于现在")
        before = {"status": policy.status, "publish_at": policy.publish_at.isoformat() if policy.publish_at else None}
        policy.status, policy.publish_at, policy.updated_at = "scheduled", publish_at, utcnow()
        audit.record(session, actor=staff, action="policy.schedule", entity_type="policy", entity_id=policy.id,
                     label=policy.title, before=before, after={"status": "scheduled", "publish_at": publish_at.isoformat()})
    return policy


def unschedule_policy(*, staff, policy_id):
    _check_editor(staff)
    with write_transaction() as session:
        policy = _lock(session, policy_id)
        if policy.status != "scheduled":
            raise DomainError("policy_not_scheduled", "政策没有定时发布", 409)
        policy.status, policy.publish_at, policy.updated_at = "draft", None, utcnow()
        audit.record(session, actor=staff, action="policy.unschedule", entity_type="policy", entity_id=policy.id,
                     label=policy.title, before={"status": "scheduled"}, after={"status": "draft"})
    return policy


def publish_policy(*, staff, policy_id):
    """Publish a draft (or scheduled) policy now as version 1 and deliver it. 409 otherwise."""
    _check_editor(staff)
    with write_transaction() as session:
        policy = _lock(session, policy_id)
        if policy.status not in ("draft", "scheduled"):
            raise DomainError("policy_not_draft", f"政策{STATUS_LABELS[policy.status]}，不能再发布", 409)
        _publish_version(session, policy, actor=staff, changes=[], now=utcnow())
        audit.record(session, actor=staff, action="policy.publish", entity_type="policy", entity_id=policy.id,
                     label=policy.title, after={"status": "published", "version": policy.version})
    return policy


def publish_due_policies():
    """The scheduler's job: publish every scheduled policy whose time has come. Each in its
    own transaction; a policy already published by another run is skipped. Returns the ids."""
    due = db.session.execute(
        select(Policy.id).where(Policy.status == "scheduled", Policy.publish_at <= utcnow()).order_by(Policy.id)
    ).scalars().all()
    db.session.rollback()
    published = []
    for policy_id in due:
        with write_transaction() as session:
            policy = _lock(session, policy_id)
            if policy.status != "scheduled" or policy.publish_at > utcnow():
                continue
            _publish_version(session, policy, actor=SystemActor(), changes=[], now=utcnow())
            audit.record(session, actor=SystemActor(), action="policy.publish", entity_type="policy",
                         entity_id=policy.id, label=policy.title,
                         after={"status": "published", "version": policy.version, "scheduled": True})
            published.append(policy_id)
    return published


def withdraw_policy(*, staff, policy_id, reason):
    """Withdraw a published policy (dealers no longer see it). A reason is required."""
    _check_editor(staff)
    reason = inputs.text(reason, field="reason", label="撤回原因", max_len=500)
    with write_transaction() as session:
        policy = _lock(session, policy_id)
        if policy.status != "published":
            raise DomainError("policy_not_published", "只有已发布的政策可以撤回", 409)
        now = utcnow()
        policy.status, policy.withdrawn_at, policy.withdraw_reason, policy.updated_at = "withdrawn", now, reason, now
        audit.record(session, actor=staff, action="policy.withdraw", entity_type="policy", entity_id=policy.id,
                     label=policy.title, before={"status": "published"}, after={"status": "withdrawn"}, reason=reason)
    return policy


def _publish_version(session, policy, *, actor, changes, now):
    """Snapshot the policy as its next version, mark it published and deliver it."""
    policy.version += 1
    policy.status, policy.publish_at, policy.published_at, policy.updated_at = "published", None, now, now
    policy.first_published_at = policy.first_published_at or now
    snap = _snapshot(policy)
    session.add(PolicyVersion(
        policy_id=policy.id, version=policy.version, title=snap["title"], category=snap["category"],
        body_html=snap["body_html"], effective_from=snap["effective_from"], effective_to=snap["effective_to"],
        ack_required=snap["ack_required"], attachments=snap["attachments"], changes=changes,
        published_at=now, published_by_id=actor.id,
    ))
    session.flush()
    _deliver(session, policy, now=now)
    publish(session, "policy.published", policy=policy, changes=changes)
    return policy.version


def _deliver(session, policy, *, now):
    """Deliver the current version to every dealer in the audience now that has not had it:
    a delivery row, a message-list entry and subscribe messages. Safe to call again."""
    audience = audiences.load("policy", policy.id, session=session)
    addressed = audiences.dealer_ids(audience, session=session)
    had = dict(session.execute(
        select(PolicyDelivery.dealer_id, PolicyDelivery.version).where(PolicyDelivery.policy_id == policy.id)
    ).all())
    fresh = [d for d in addressed if d not in had]
    stale = [d for d in addressed if d in had and had[d] < policy.version]
    if fresh:
        session.execute(PolicyDelivery.__table__.insert(), [
            {"policy_id": policy.id, "dealer_id": d, "version": policy.version, "delivered_at": now} for d in fresh
        ])
    for start in range(0, len(stale), 500):
        session.execute(
            update(PolicyDelivery)
            .where(PolicyDelivery.policy_id == policy.id, PolicyDelivery.dealer_id.in_(stale[start:start + 500]))
            .values(version=policy.version, delivered_at=now)
        )
    targets = fresh + stale
    if not targets:
        return []
    category = CATEGORY_LABELS[policy.category]
    updated = policy.version > 1
    body = (f"{category}《{policy.title}》已更新到第 {policy.version} 版，请查看本次更新。" if updated
            else f"新{category}《{policy.title}》已发布，请查看。")
    if policy.ack_required:
        body += "本政策需要您阅读后确认。"
    dealer_alerts.notify_dealers(
        session, dealer_ids=targets, event="policy_published", title=f"{category}{'更新' if updated else '发布'}",
        body=body, page=MP_PAGE.format(policy_id=policy.id), ref_type="policy", ref_id=policy.id,
        dedupe=f"v{policy.version}", values={
            "title": policy.title, "category": category, "time": now,
            "tip": "需要阅读后确认" if policy.ack_required else "请在小程序中查看",
        },
    )
    return targets


# --- staff: reading ------------------------------------------------------------------------------

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


STATS_FILTERS = {"": "全部", "unread": "未读", "unacked": "未确认"}


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
    rows = [
        {"dealer": dealers[d], "delivered_at": delivered.get(d), "read": reads.get(d), "acked": acks.get(d),
         "reminded_at": reminded.get(d)}
        for d in page_ids
    ]
    return {"policy": policy, "audience": audience, "figures": figures, "rows": rows, "total": total}


def _stragglers(session, policy):
    """Dealers in the audience now who have not read — or, where acknowledgement is required,
    not acknowledged — the current version."""
    addressed = audiences.dealer_ids(audiences.load("policy", policy.id, session=session), session=session)
    done_reading = set(session.execute(
        select(PolicyRead.dealer_id).where(PolicyRead.policy_id == policy.id, PolicyRead.version >= policy.version)
    ).scalars())
    acked = set(session.execute(
        select(PolicyAck.dealer_id).where(PolicyAck.policy_id == policy.id, PolicyAck.version == policy.version)
    ).scalars())
    return [d for d in addressed if d not in done_reading or (policy.ack_required and d not in acked)]


def remind_stragglers(*, staff, policy_id):
    """Remind every straggling dealer: a subscribe message to its consenting users and one
    WeCom message per rep listing their stragglers. A dealer reminded within REMIND_COOLDOWN
    is skipped, so pressing twice sends nothing new. Returns (reminded, skipped) counts."""
    _check_editor(staff)
    with write_transaction() as session:
        policy = _lock(session, policy_id)
        if policy.status != "published":
            raise DomainError("policy_not_published", "只有已发布的政策可以提醒", 409)
        now = utcnow()
        stragglers = _stragglers(session, policy)
        recent = set(session.execute(
            select(PolicyReminder.dealer_id).where(
                PolicyReminder.policy_id == policy.id, PolicyReminder.reminded_at > now - REMIND_COOLDOWN)
        ).scalars())
        targets = [d for d in stragglers if d not in recent]
        skipped = len(stragglers) - len(targets)
        if not targets:
            return 0, skipped
        session.execute(PolicyReminder.__table__.insert(), [
            {"policy_id": policy.id, "dealer_id": d, "version": policy.version, "staff_id": staff.id,
             "reminded_at": now} for d in targets
        ])
        category = CATEGORY_LABELS[policy.category]
        batch = f"remind:{now:%Y%m%d%H%M%S}"
        action = "阅读并确认" if policy.ack_required else "阅读"
        dealer_alerts.notify_dealers(
            session, dealer_ids=targets, event="policy_reminder", title=f"{category}阅读提醒",
            body=f"{category}《{policy.title}》（第 {policy.version} 版）请您尽快{action}。",
            page=MP_PAGE.format(policy_id=policy.id), ref_type="policy", ref_id=policy.id, dedupe=batch,
            values={"title": policy.title, "category": category, "time": now, "tip": f"请尽快{action}"},
        )
        _remind_reps(session, policy, targets, batch, action)
        audit.record(session, actor=staff, action="policy.remind", entity_type="policy", entity_id=policy.id,
                     label=policy.title, after={"version": policy.version, "dealers": len(targets), "skipped": skipped})
    return len(targets), skipped


def _remind_reps(session, policy, dealer_ids, batch, action):
    by_rep = {}
    for start in range(0, len(dealer_ids), 500):
        for userid, name in session.execute(
            select(Staff.wecom_userid, Dealer.name).join(Staff, Staff.id == Dealer.rep_id)
            .where(Dealer.id.in_(dealer_ids[start:start + 500]), Staff.active.is_(True),
                   Staff.wecom_userid.is_not(None)).order_by(Dealer.code)
        ).all():
            by_rep.setdefault(userid, []).append(name)
    for userid, names in sorted(by_rep.items()):
        shown = "、".join(names[:20]) + (f" 等 {len(names)} 家" if len(names) > 20 else "")
        text = (f"政策《{clip(policy.title, 40)}》（第 {policy.version} 版）你负责的以下经销商尚未{action}：{shown}。"
                "请提醒他们在小程序中查看。")
        outbox.add(
            session, channel="wecom_app", event="policy_reminder", recipient=userid, payload=text_message(text),
            dedupe_key=f"policy:{policy.id}:{batch}:wecom_app:{userid}"[:160], queue="default",
            ref_type="policy", ref_id=policy.id,
        )


# --- dealer side -----------------------------------------------------------------------------------

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
    if lock:  # NO KEY UPDATE, see `_lock`
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
