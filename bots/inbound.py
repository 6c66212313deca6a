"""The job behind the callback: one run per inbound WeCom message or event.

`handle_inbound(message)` receives the decrypted message as a flat dict of WeCom's XML
fields (FromUserName, MsgType, Content, MsgId, Event, EventKey, ResponseCode, ...) plus the
callback's `dedupe_key`. Every reply is an outbox row (wecom_app, queue high) whose dedupe
key derives from the inbound message's, so a job that runs twice answers once.
"""
import hashlib
import logging

from sqlalchemy import select

from app.database import write_transaction
from app.extensions import db
from app.notify import service as outbox
from app.integrations.wecom_messages import text_message
from app.staff.models import Staff

log = logging.getLogger(__name__)

# WeCom cuts text app messages beyond 2048 bytes; we cut first, at a character boundary.
TEXT_LIMIT_BYTES = 2048
NOT_STAFF_REPLY = "你好！你的企业微信账号没有关联可用的订货系统员工账号（尚未开通或已停用），暂时不能使用订单助手。请联系管理员。"
NON_TEXT_REPLY = "订单助手目前只看得懂文字消息。发送「帮助」查看可用命令。"


def handle_inbound(message):
    """Dispatch one inbound message (job entry point; safe to run twice)."""
    from bots import cards, commands

    msg_type = message.get("MsgType")
    if msg_type == "text":
        commands.handle_text(message)
    elif msg_type == "event" and message.get("Event") == "template_card_event":
        cards.handle_card_event(message)
    elif msg_type in ("image", "voice", "video", "location", "link", "file"):
        reply(message, NON_TEXT_REPLY)
    else:
        # enter_agent, subscribe and other events need no answer.
        log.info("WeCom %s/%s from %s ignored", msg_type, message.get("Event"), message.get("FromUserName"))


def staff_for(message):
    """The active staff member who sent `message`, or None (unknown or deactivated)."""
    userid = message.get("FromUserName")
    if not userid:
        return None
    staff = db.session.execute(select(Staff).where(Staff.wecom_userid == userid)).scalar_one_or_none()
    if staff is None or not staff.active:
        return None
    return staff


def truncate_utf8(text, limit, suffix="\n……（内容过长，已截断）"):
    """`text` cut to at most `limit` UTF-8 bytes, at a character boundary, marked when cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = limit - len(suffix.encode("utf-8"))
    return raw[:room].decode("utf-8", errors="ignore").rstrip() + suffix


def reply_key(message, part="reply"):
    key = f"bot:{message['dedupe_key']}:{part}"
    if len(key) > 160:
        key = f"bot:{hashlib.sha1(message['dedupe_key'].encode()).hexdigest()}:{part}"
    return key


def reply(message, content, *, part="reply"):
    """Answer the sender with a text app message (one outbox row, deduped per inbound message)."""
    userid = message.get("FromUserName")
    if not userid:
        return None
    with write_transaction() as session:
        return outbox.add(
            session, channel="wecom_app", event="bot_reply", recipient=userid,
            payload=text_message(truncate_utf8(content, TEXT_LIMIT_BYTES)),
            dedupe_key=reply_key(message, part), queue="high",
        )
