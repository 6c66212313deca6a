"""Scheduling, cancelling and sending campaigns.

WeCom does not let a server post into a customer group. `add_msg_template` with
chat_type "group" creates a task for one member (the groups' owner, `sender`); the member
confirms it in the WeCom client and only then is anything sent. So sending freezes the plan
(`app.campaigns.planning`), one task per owner, and creates the tasks; what became of them
is `app.campaigns.results`. A task the owner has not sent can be stopped
(cancel_groupmsg_send); what was sent cannot be recalled (WeCom's documents say so).

Nothing here talks to WeCom inside a database transaction: rows are claimed and committed,
WeCom is called, the outcome is written in a transaction of its own.
"""
import logging
from datetime import timedelta

from sqlalchemy import select, update

from app.audit import service as audit
from app.campaigns import wecom
from app.campaigns.limits import monthly_limit, remaining_this_month
from app.campaigns.models import (
    CAMPAIGN_STATUS_LABELS,
    Campaign,
    CampaignAttachment,
    CampaignGroup,
    CampaignSender,
    CustomerGroup,
)
from app.campaigns.planning import compute_plan, freeze_plan
from app.campaigns.reading import get_campaign
from app.campaigns.results import finish_if_done, remind
from app.database import write_transaction
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish

log = logging.getLogger(__name__)

MEDIA_REUSE = timedelta(hours=60)  # media_id lasts 3 days; re-upload well before
JOB_QUEUE = "low"
JOB_TIMEOUT = 600
# The name RQ's scheduler books a scheduled send under, hours or days ahead. Jobs booked
# before this module was split from `app.campaigns.service` carry it too, so that module
# keeps answering to it (and to `create_tasks`).
SCHEDULED_SEND = "app.campaigns.service.send_campaign"


def lock_campaign(session, campaign_id):
    """The campaign, locked FOR UPDATE; 404 when there is none."""
    campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).scalar_one_or_none()
    if campaign is None:
        raise NotFound("群发活动不存在", "campaign_not_found")
    return campaign


def _status_error(campaign, doing):
    return DomainError("campaign_state", f"活动当前为「{CAMPAIGN_STATUS_LABELS[campaign.status]}」，不能{doing}", 409)


def schedule_campaign(*, staff, campaign_id, at):
    """Send at `at` (aware datetime, in the future). Draft or scheduled campaigns only. Audited."""
    if at <= utcnow() + timedelta(seconds=30):
        raise inputs.invalid("scheduled_at", "定时发送的时间应晚于现在")
    with write_transaction() as session:
        campaign = lock_campaign(session, campaign_id)
        if campaign.status not in ("draft", "scheduled"):
            raise _status_error(campaign, "定时发送")
        _require_plannable(session, campaign)
        before = {"status": campaign.status, "scheduled_at": campaign.scheduled_at}
        campaign.status, campaign.scheduled_at, campaign.updated_at = "scheduled", at, utcnow()
        audit.record(session, actor=staff, action="campaign.schedule", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, before=before, after={"status": "scheduled", "scheduled_at": at})
    from app import jobs

    try:  # RQ's scheduler sends it on time; the periodic tick is the fallback
        jobs.enqueue_in((at - utcnow()).total_seconds() + 1, SCHEDULED_SEND, campaign.id, queue=JOB_QUEUE,
                        timeout=JOB_TIMEOUT)
    except Exception as exc:
        log.warning("could not book campaign %s on the scheduler (%s); the periodic tick will send it",
                    campaign.id, exc.__class__.__name__)
    return campaign


def _require_plannable(session, campaign):
    plan = compute_plan(session, campaign)
    if not plan["senders"]:
        reason = "受众中的经销商没有已对应的客户群" if not plan["dropped"] else "受众的客户群本月都已不能再接收群发"
        raise DomainError("nothing_to_send", f"没有可以发送的客户群：{reason}", 422)
    return plan


def send_now(*, staff, campaign_id):
    """Send at once: the plan is frozen and the WeCom tasks are created (by a job on the low
    queue; in-process without Redis). 409 unless draft or scheduled; 422 when no group can receive it."""
    with write_transaction() as session:
        campaign = lock_campaign(session, campaign_id)
        if campaign.status not in ("draft", "scheduled"):
            raise _status_error(campaign, "发送")
        _require_plannable(session, campaign)
        campaign.scheduled_at, campaign.updated_at = utcnow(), utcnow()
        if campaign.status == "draft":
            campaign.status = "scheduled"
        audit.record(session, actor=staff, action="campaign.send", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, after={"status": "sending"})
    from app import jobs

    jobs.enqueue(send_campaign, campaign.id, queue=JOB_QUEUE, timeout=JOB_TIMEOUT)
    return get_campaign(campaign_id)


def cancel_campaign(*, staff, campaign_id, reason=None):
    """Cancel: a draft or scheduled campaign is simply not sent. A campaign being sent has its
    tasks the reps have not sent yet stopped with cancel_groupmsg_send (WeCom cannot recall
    what was already sent; those groups stay 已发送). Audited."""
    with write_transaction() as session:
        campaign = lock_campaign(session, campaign_id)
        if campaign.status in ("draft", "scheduled"):
            before = campaign.status
            campaign.status, campaign.cancelled_at, campaign.updated_at = "cancelled", utcnow(), utcnow()
            audit.record(session, actor=staff, action="campaign.cancel", entity_type="campaign",
                         entity_id=campaign.id, label=campaign.title, before={"status": before},
                         after={"status": "cancelled"}, reason=reason)
            return {"stopped": 0, "failed": 0}
        if campaign.status != "sending":
            raise _status_error(campaign, "取消")
        senders = session.execute(select(CampaignSender).where(
            CampaignSender.campaign_id == campaign.id, CampaignSender.status.in_(("pending", "waiting")))
        ).scalars().all()
        to_stop = [(s.id, s.msgid) for s in senders if s.status == "waiting"]
        for sender in senders:
            if sender.status == "pending":
                _set_sender_groups(session, sender.id, "cancelled", "活动已取消", from_statuses=("planned",))
                sender.status, sender.updated_at = "cancelled", utcnow()
    from app.integrations.wechat_errors import WeChatError

    stopped = failed = 0
    for sender_id, msgid in to_stop:
        try:
            wecom.gateway().cancel_groupmsg_send(msgid)
        except WeChatError as exc:
            failed += 1
            log.warning("cancel_groupmsg_send %s failed: %s", msgid, exc)
            continue
        with write_transaction() as session:
            sender = session.get(CampaignSender, sender_id)
            if sender.status == "waiting":
                sender.status, sender.updated_at = "cancelled", utcnow()
                _set_sender_groups(session, sender_id, "cancelled", "活动已取消（未确认的任务已停止）",
                                   from_statuses=("waiting",))
                stopped += 1
    with write_transaction() as session:
        campaign = lock_campaign(session, campaign_id)
        audit.record(session, actor=staff, action="campaign.cancel", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, before={"status": "sending"},
                     after={"stopped_tasks": stopped, "stop_failed": failed}, reason=reason)
        finish_if_done(session, campaign)
    return {"stopped": stopped, "failed": failed}


def _set_sender_groups(session, sender_id, status, reason, *, from_statuses):
    session.execute(
        update(CampaignGroup).where(CampaignGroup.sender_id == sender_id, CampaignGroup.status.in_(from_statuses))
        .values(status=status, reason=reason, updated_at=utcnow())
    )



def send_campaign(campaign_id):
    """The job: freeze the plan of a due campaign (scheduled, time reached), announce it to the
    internal group, and create one WeCom task per sender. Safe to run twice: only one run moves
    the campaign to `sending`, and each sender is claimed before its task is created."""
    now = utcnow()
    with write_transaction() as session:
        campaign = lock_campaign(session, campaign_id)
        if campaign.status == "scheduled" and campaign.scheduled_at is not None and campaign.scheduled_at <= now:
            plan = compute_plan(session, campaign)
            freeze_plan(session, campaign, plan)
            campaign.status, campaign.sent_at, campaign.updated_at = "sending", now, now
            publish(session, "campaign.sending", campaign=campaign, plan=plan)
            if not plan["senders"]:
                finish_if_done(session, campaign)
        elif campaign.status != "sending":
            return "skipped"
    return create_tasks(campaign_id)


MEDIA_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "video/mp4": ".mp4", "application/pdf": ".pdf",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx"}


def _media_id(attachment):
    """A WeCom media_id for an image, mini-program cover, video or file: uploaded once (media/upload
    with its type), reused for 60 hours."""
    if attachment.media_id and attachment.media_uploaded_at and attachment.media_uploaded_at > utcnow() - MEDIA_REUSE:
        return attachment.media_id
    from app.storage import get_storage

    data = get_storage().get(attachment.storage_key)
    extension = MEDIA_EXTENSIONS.get(attachment.content_type, ".jpg")
    media_type = attachment.kind if attachment.kind in ("video", "file") else "image"
    name = f"campaign-{attachment.campaign_id}-{attachment.position}{extension}"
    if attachment.kind == "file" and attachment.title:
        name = attachment.title
    media_id = wecom.gateway().upload_media(data, name, attachment.content_type, media_type)
    with write_transaction() as session:
        row = session.get(CampaignAttachment, attachment.id)
        row.media_id, row.media_uploaded_at = media_id, utcnow()
    attachment.media_id = media_id
    return media_id


def message_body(campaign, sender_userid, chat_ids):
    """The add_msg_template body for one sender, as documented (chat_type "group")."""
    body = {"chat_type": "group", "sender": sender_userid, "chat_id_list": list(chat_ids), "allow_select": False}
    if campaign.text:
        body["text"] = {"content": campaign.text}
    attachments = []
    for a in campaign.attachments:
        if a.kind == "image":
            attachments.append({"msgtype": "image", "image": {"media_id": _media_id(a)}})
        elif a.kind == "link":
            link = {"title": a.title, "url": a.url}
            if a.description:
                link["desc"] = a.description
            attachments.append({"msgtype": "link", "link": link})
        elif a.kind == "miniprogram":
            attachments.append({"msgtype": "miniprogram", "miniprogram": {
                "title": a.title, "pic_media_id": _media_id(a), "appid": a.appid, "page": a.page}})
        elif a.kind in ("video", "file"):
            attachments.append({"msgtype": a.kind, a.kind: {"media_id": _media_id(a)}})
    if attachments:
        body["attachments"] = attachments
    return body


def create_tasks(campaign_id):
    """Create the WeCom task of every pending sender of a campaign being sent. A sender WeCom
    refuses is `failed` with its errcode (its groups too); the others go on."""
    from app.integrations.wechat_errors import WeChatError

    results = {}
    sender_ids = db.session.execute(select(CampaignSender.id).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "pending").order_by(CampaignSender.id)
    ).scalars().all()
    db.session.rollback()
    for sender_id in sender_ids:
        with write_transaction() as session:  # claim: only one worker creates this task
            claimed = session.execute(
                update(CampaignSender).where(CampaignSender.id == sender_id, CampaignSender.status == "pending")
                .values(status="creating", attempts=CampaignSender.attempts + 1, updated_at=utcnow())
            ).rowcount
        if not claimed:
            continue
        campaign = db.session.get(Campaign, campaign_id)
        sender = db.session.get(CampaignSender, sender_id)
        chats = dict(db.session.execute(
            select(CustomerGroup.chat_id, CampaignGroup.id).join(CampaignGroup, CampaignGroup.group_id == CustomerGroup.id)
            .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "planned")
        ).all())
        userid = sender.sender_userid
        db.session.rollback()
        try:
            answer = wecom.gateway().add_msg_template(message_body(campaign, userid, list(chats)))
        except WeChatError as exc:
            results[userid] = "failed"
            _record_task_failure(sender_id, exc)
            continue
        except Exception as exc:  # storage gone, a bug: the sender can be retried
            log.exception("creating the group-message task of sender %s failed", sender_id)
            results[userid] = "failed"
            _record_task_failure(sender_id, exc)
            continue
        results[userid] = "waiting"
        _record_task_created(campaign_id, sender_id, answer, chats)
    return results


def _record_task_failure(sender_id, exc):
    errcode = getattr(exc, "errcode", None)
    errmsg = getattr(exc, "errmsg", None) or f"内部错误：{exc.__class__.__name__}"
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.status, sender.errcode, sender.errmsg, sender.updated_at = "failed", errcode, str(errmsg)[:500], utcnow()
        _set_sender_groups(session, sender_id, "failed",
                           f"创建群发任务失败（{errcode if errcode is not None else '无错误码'}：{str(errmsg)[:120]}）",
                           from_statuses=("planned",))
        finish_if_done(session, session.get(Campaign, sender.campaign_id))


def _record_task_created(campaign_id, sender_id, answer, chats):
    now = utcnow()
    refused = set(answer.get("fail_list") or [])
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.status, sender.msgid, sender.task_created_at = "waiting", answer.get("msgid"), now
        sender.errcode = sender.errmsg = None
        sender.updated_at = now
        for chat_id, row_id in chats.items():
            row = session.get(CampaignGroup, row_id)
            if chat_id in refused:
                row.status, row.reason = "failed", "企业微信拒绝向该群创建群发（fail_list）"
            else:
                row.status, row.reason = "waiting", None
            row.updated_at = now
        remind(session, sender, session.get(Campaign, campaign_id))


STUCK_AFTER = timedelta(minutes=10)


def recover_stuck_senders(campaign_id):
    """A sender left `creating` (its worker died between asking WeCom for the task and writing
    the answer down) is looked up in WeCom: get_groupmsg_list_v2 lists the corp's group messages
    created since the claim, get_groupmsg_task says whose each is; a task for this sender with
    this campaign's text, not recorded by another row, is adopted. Otherwise WeCom never
    created it and the sender goes back to `pending`, to be created again."""
    from app.integrations.wechat_errors import WeChatError

    now = utcnow()
    stuck = db.session.execute(select(CampaignSender).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "creating",
        CampaignSender.updated_at < now - STUCK_AFTER)).scalars().all()
    if not stuck:
        return {}
    campaign = db.session.get(Campaign, campaign_id)
    text = campaign.text or ""
    work = [(s.id, s.sender_userid, s.updated_at) for s in stuck]
    known = set(db.session.execute(select(CampaignSender.msgid).where(CampaignSender.msgid.is_not(None))).scalars())
    db.session.rollback()
    gateway, outcome = wecom.gateway(), {}
    for sender_id, userid, claimed_at in work:
        try:
            found = None
            since = claimed_at - timedelta(minutes=2)
            for message in gateway.list_group_messages(since.timestamp(), now.timestamp()):
                if message.get("msgid") in known or ((message.get("text") or {}).get("content") or "") != text:
                    continue
                if any(t.get("userid") == userid for t in gateway.get_groupmsg_task(message["msgid"])):
                    found = message["msgid"]
                    break
        except WeChatError as exc:
            log.warning("looking up the task of stuck sender %s failed: %s", sender_id, exc)
            continue
        if found:
            known.add(found)
            chats = dict(db.session.execute(
                select(CustomerGroup.chat_id, CampaignGroup.id)
                .join(CampaignGroup, CampaignGroup.group_id == CustomerGroup.id)
                .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "planned")).all())
            db.session.rollback()
            _record_task_created(campaign_id, sender_id, {"msgid": found, "fail_list": []}, chats)
            outcome[userid] = "adopted"
        else:
            with write_transaction() as session:
                session.execute(update(CampaignSender).where(
                    CampaignSender.id == sender_id, CampaignSender.status == "creating")
                    .values(status="pending", updated_at=utcnow()))
            outcome[userid] = "pending"
    return outcome


def retry_sender(*, staff, sender_id):
    """Try again a sender whose task WeCom refused: its failed groups are planned again (those
    at this month's limit now are dropped), then its task is created. Audited."""
    with write_transaction() as session:
        sender = session.execute(select(CampaignSender).where(CampaignSender.id == sender_id).with_for_update()
                                 ).scalar_one_or_none()
        if sender is None:
            raise NotFound("发送人不存在", "sender_not_found")
        campaign = lock_campaign(session, sender.campaign_id)
        if sender.status != "failed":
            raise DomainError("sender_state", "只有创建任务失败的发送人可以重试", 409)
        rows = session.execute(select(CampaignGroup).where(CampaignGroup.sender_id == sender.id,
                                                           CampaignGroup.status == "failed")).scalars().all()
        remaining = remaining_this_month(session, [r.group_id for r in rows], exclude_campaign_id=campaign.id)
        now = utcnow()
        for row in rows:
            if remaining[row.group_id] <= 0:
                row.status, row.reason = "dropped", f"本月群发次数已用完（每群每月上限 {monthly_limit()} 条）"
            else:
                row.status, row.reason = "planned", None
            row.updated_at = now
        sender.status, sender.updated_at = "pending", now
        campaign.status, campaign.finished_at = "sending", None
        audit.record(session, actor=staff, action="campaign.retry", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, after={"sender": sender.sender_userid}, reason=sender.errmsg)
        campaign_id = campaign.id
    if not any(r.status == "planned" for r in rows):
        with write_transaction() as session:
            sender = session.get(CampaignSender, sender_id)
            sender.status = "failed"
            finish_if_done(session, session.get(Campaign, campaign_id))
        raise DomainError("nothing_to_send", "该发送人的群本月都已不能再接收群发", 422)
    from app import jobs

    jobs.enqueue(create_tasks, campaign_id, queue=JOB_QUEUE, timeout=JOB_TIMEOUT)
