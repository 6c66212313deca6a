"""Who wrote to the bot and how it answers: the sender's staff account, and a text reply
as one outbox row (wecom_app, queue high) whose dedupe key derives from the inbound
message's, so a job that runs twice answers once. Used by the dispatcher (`bots.inbound`),
the commands and the card handler."""
import hashlib

from sqlalchemy import select

from app.database import write_transaction
from app.extensions import db
from app.integrations.wecom_messages import text_message
from app.notify import service as outbox
from app.staff.models import Staff

# WeCom cuts text app messages beyond 2048 bytes; we cut first, at a character boundary.
TEXT_LIMIT_BYTES = 2048
NOT_STAFF_REPLY = "你好！你的企业微信账号没有关联可用的订货系统员工账号（尚未开通或已停用），暂时不能使用订单助手。请联系管理员。"


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
