"""Authoring policies: the one place that creates, publishes, versions and withdraws them.

Staff side (`policies.edit` edits; `policies.view` may look): `create_policy`,
`update_policy`, `schedule_policy` / `unschedule_policy`, `publish_policy`,
`withdraw_policy` (reminding is `app.policies.reminders`); the scheduler runs
`publish_due_policies`. Each is one write transaction with its audit entry and its outbox
rows.

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
"""
import hashlib
import logging

from sqlalchemy import select, update

from app.audience import service as audiences
from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.permissions import require
from app.notify import dealer_alerts
from app.policies import content
from app.policies.models import (
    CATEGORY_LABELS,
    STATUS_LABELS,
    Policy,
    PolicyAttachment,
    PolicyDelivery,
    PolicyVersion,
)
from app.policies.reading import current_attachments
from app.storage import StorageError, get_storage

log = logging.getLogger(__name__)

MP_PAGE = "pages/policy/detail?id={policy_id}"


class SystemActor:
    """The scheduler, as an audit actor."""

    id = None
    name = "定时任务"


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

def check_editor(staff):
    """403 unless the staff member may edit policies."""
    require(staff, "policies.edit", "你的角色无权修改政策")


def lock_policy(session, policy_id):
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
    check_editor(staff)
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
    check_editor(staff)

    def work(stored):
        with write_transaction() as session:
            policy = lock_policy(session, policy_id)
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
    check_editor(staff)
    with write_transaction() as session:
        policy = lock_policy(session, policy_id)
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
    check_editor(staff)
    with write_transaction() as session:
        policy = lock_policy(session, policy_id)
        if policy.status != "scheduled":
            raise DomainError("policy_not_scheduled", "政策没有定时发布", 409)
        policy.status, policy.publish_at, policy.updated_at = "draft", None, utcnow()
        audit.record(session, actor=staff, action="policy.unschedule", entity_type="policy", entity_id=policy.id,
                     label=policy.title, before={"status": "scheduled"}, after={"status": "draft"})
    return policy


def publish_policy(*, staff, policy_id):
    """Publish a draft (or scheduled) policy now as version 1 and deliver it. 409 otherwise."""
    check_editor(staff)
    with write_transaction() as session:
        policy = lock_policy(session, policy_id)
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
            policy = lock_policy(session, policy_id)
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
    check_editor(staff)
    reason = inputs.text(reason, field="reason", label="撤回原因", max_len=500)
    with write_transaction() as session:
        policy = lock_policy(session, policy_id)
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
