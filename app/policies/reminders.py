"""Reminding the dealers who have not read (or not acknowledged) a policy's current version,
and their reps."""
from datetime import timedelta

from sqlalchemy import select

from app.audience import service as audiences
from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Dealer
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.notify import dealer_alerts
from app.notify import service as outbox
from app.integrations.wecom_messages import clip, text_message
from app.policies.authoring import MP_PAGE, check_editor, lock_policy
from app.policies.models import CATEGORY_LABELS, PolicyAck, PolicyRead, PolicyReminder
from app.staff.models import Staff

REMIND_COOLDOWN = timedelta(minutes=30)


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
    check_editor(staff)
    with write_transaction() as session:
        policy = lock_policy(session, policy_id)
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
