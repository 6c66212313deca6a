"""Results and reminders: what WeCom says each task did, per group; reminding reps of the
tasks they have not confirmed; a campaign done once every sender is settled.

Every group is "等待业务员确认" (waiting) until get_groupmsg_task says the owner sent
(status 2) and get_groupmsg_send_result lists the group (1 sent; 2/3 failed; a group the
owner left out is 未发送).
"""
import logging
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from app.campaigns import wecom
from app.campaigns.models import Campaign, CampaignGroup, CampaignSender, CustomerGroup
from app.database import write_transaction
from app.extensions import db
from app.kernel.clock import utcnow
from app.notify import service as outbox

log = logging.getLogger(__name__)

# get_groupmsg_send_result status -> (our status, reason)
RESULT_STATUSES = {
    0: ("not_sent", "未发送"),
    1: ("sent", None),
    2: ("failed", "因客户不是好友导致发送失败"),
    3: ("failed", "该群已收到其他群发消息，达到本月接收上限"),
}


def poll_campaign(campaign_id):
    """Ask WeCom how each waiting task went and update its groups: get_groupmsg_task (did the rep
    send?) then, for a sent task, get_groupmsg_send_result (per group). Failures to ask are
    logged and retried on the next poll."""
    from app.integrations.wechat_errors import WeChatError

    senders = db.session.execute(select(CampaignSender).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "waiting",
        CampaignSender.msgid.is_not(None))).scalars().all()
    work = [(s.id, s.msgid, s.sender_userid) for s in senders]
    db.session.rollback()
    gateway = wecom.gateway()
    outcome = {}
    for sender_id, msgid, userid in work:
        try:
            tasks = {t.get("userid"): t for t in gateway.get_groupmsg_task(msgid)}
            task = tasks.get(userid)
            sent = task is not None and int(task.get("status") or 0) == 2
            results = gateway.get_groupmsg_send_result(msgid, userid) if sent else []
        except WeChatError as exc:
            log.warning("polling group-message task %s failed: %s", msgid, exc)
            outcome[userid] = "error"
            continue
        outcome[userid] = _record_results(sender_id, task if sent else None, results)
    with write_transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        finish_if_done(session, campaign)
        for sender in session.execute(select(CampaignSender).where(
                CampaignSender.campaign_id == campaign_id, CampaignSender.status == "waiting")).scalars():
            remind(session, sender, campaign)
    return outcome


def _record_results(sender_id, task, results):
    now = utcnow()
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.polled_at = now
        if task is None:
            return "waiting"
        by_chat = {r.get("chat_id"): r for r in results if r.get("chat_id")}
        rows = session.execute(
            select(CampaignGroup, CustomerGroup.chat_id).join(CustomerGroup, CustomerGroup.id == CampaignGroup.group_id)
            .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "waiting")
        ).all()
        for row, chat_id in rows:
            result = by_chat.get(chat_id)
            if result is None:
                # Documented: for group tasks only sent records are returned; a group missing
                # after the rep sent was left out by the rep.
                row.status, row.reason, row.result_status = "not_sent", "业务员发送时未包含该群", None
            else:
                code = int(result.get("status") or 0)
                status, reason = RESULT_STATUSES.get(code, ("failed", f"未知的发送状态 {code}"))
                row.status, row.reason, row.result_status = status, reason, code
                if status == "sent":
                    row.sent_at = _timestamp(result.get("send_time")) or now
            row.updated_at = now
        sender.status = "sent"
        sender.sent_at = _timestamp(task.get("send_time")) or now
        sender.updated_at = now
        return "sent"


def _timestamp(value):
    try:
        return datetime.fromtimestamp(int(value), timezone.utc) if value else None
    except (TypeError, ValueError):
        return None


def remind(session, sender, campaign):
    """A WeCom app message to the rep about an unconfirmed task: when it is created, then every
    CAMPAIGN_REMIND_HOURS, at most CAMPAIGN_MAX_REMINDERS times. One outbox row per reminder
    (dedupe key per campaign, sender and reminder number), so a rerun never reminds twice."""
    config = current_app.config
    now = utcnow()
    if sender.status != "waiting" or sender.reminders >= config["CAMPAIGN_MAX_REMINDERS"]:
        return False
    if sender.reminded_at and sender.reminded_at > now - timedelta(hours=config["CAMPAIGN_REMIND_HOURS"]):
        return False
    count = session.execute(select(func.count()).select_from(CampaignGroup).where(
        CampaignGroup.sender_id == sender.id, CampaignGroup.status == "waiting")).scalar_one()
    from app.integrations.wecom_messages import text_message

    first = sender.reminders == 0
    content = (
        f"{'新的' if first else f'第 {sender.reminders} 次提醒：'}客户群群发「{campaign.title}」待你确认：共 {count} 个客户群。"
        "请打开企业微信 → 工作台 → 客户联系 →「群发助手」，确认后发送。"
    )
    outbox.add(session, channel="wecom_app", event="campaign_remind", recipient=sender.sender_userid,
               payload=text_message(content), dedupe_key=f"campaign:{campaign.id}:remind:{sender.id}:{sender.reminders + 1}",
               queue="default", ref_type="campaign", ref_id=campaign.id)
    sender.reminders += 1
    sender.reminded_at = now
    return True


def finish_if_done(session, campaign):
    """A campaign being sent is done once no sender is still pending, creating or waiting."""
    open_senders = session.execute(select(func.count()).select_from(CampaignSender).where(
        CampaignSender.campaign_id == campaign.id,
        CampaignSender.status.in_(("pending", "creating", "waiting")))).scalar_one()
    if campaign.status == "sending" and open_senders == 0:
        campaign.status, campaign.finished_at, campaign.updated_at = "done", utcnow(), utcnow()
