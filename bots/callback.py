"""The WeCom app's callback URL: GET /wecom/callback (URL verification) and POST (messages
and events), as configured in the WeCom admin console under 接收消息 → 设置API接收.

WeCom waits at most 5 s for an answer and retries otherwise, so the route only checks,
decrypts, records the message for dedupe and hands it to a job (`bots.inbound.handle_inbound`).
Answers to the rep go out later as app messages through the outbox. An empty 200 body is
what WeCom expects when there is no passive reply.
"""
import logging
import time

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import delete

from app.database import dialect_insert, write_transaction
from app.extensions import db
from app.integrations.wechat import WeComCallbackCrypto, WeComCallbackError
from app.kernel.clock import utcnow
from app.notify.models import InboundEvent

log = logging.getLogger(__name__)

bp = Blueprint("wecom_callback", __name__)

# WeCom's timestamps are Unix seconds; anything older (or further ahead) than this is a replay.
MAX_CLOCK_SKEW_SECONDS = 300
MAX_DEDUPE_KEY = 160


def _crypto():
    return WeComCallbackCrypto.from_config(current_app.config)


def _error(status, code, message, reason=None):
    body = {"error": {"code": code, "message": message, "details": {"reason": reason} if reason else {}}}
    return jsonify(body), status


def _forbidden(reason):
    log.warning("WeCom callback refused (%s) from %s", reason, request.remote_addr)
    return _error(403, "forbidden", "企业微信回调校验失败", reason)


def _misconfigured(exc):
    log.error("WeCom callback cannot run: %s (check WECOM_TOKEN / WECOM_AES_KEY / WECOM_CORP_ID)", exc)
    return _error(503, "wecom_not_configured", "企业微信回调配置有误，请检查 WECOM_AES_KEY 等设置")


def _signed_params():
    """(msg_signature, timestamp, nonce) from the query string, or the refusal reason."""
    args = request.args
    signature, timestamp, nonce = args.get("msg_signature"), args.get("timestamp"), args.get("nonce")
    if not signature or not timestamp or not nonce:
        return None, "missing_params"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return None, "bad_timestamp"
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return None, "stale_timestamp"
    return (signature, timestamp, nonce), None


@bp.get("/wecom/callback")
def verify_url():
    params, reason = _signed_params()
    echostr = request.args.get("echostr")
    if params is None or not echostr:
        return _forbidden(reason or "missing_echostr")
    try:
        plain = _crypto().verify_url(*params, echostr)
    except ValueError as exc:
        return _misconfigured(exc)
    except WeComCallbackError as exc:
        return _forbidden(exc.reason)
    # WeCom wants the decrypted echostr as-is: no quotes, no newline.
    return Response(plain, status=200, mimetype="text/plain")


def dedupe_key(message):
    """WeCom's documented dedupe: MsgId for messages, FromUserName + CreateTime for events.

    A card tap also carries its ResponseCode (unique per tap, repeated by WeCom's retry),
    so two taps on different cards within the same second are both taken.
    """
    msg_id = message.get("MsgId")
    if msg_id:
        key = f"wecom:msg:{msg_id}"
    else:
        key = f"wecom:evt:{message.get('FromUserName', '')}:{message.get('CreateTime', '')}:{message.get('Event', '')}"
        if message.get("ResponseCode"):
            key += f":{message['ResponseCode']}"
    return key[:MAX_DEDUPE_KEY]


def _record_first_sight(key):
    """True the first time this message is seen (row written), False for a duplicate."""
    with write_transaction() as session:
        table = InboundEvent.__table__
        stmt = dialect_insert(session, table).values(dedupe_key=key, received_at=utcnow())
        stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.dedupe_key]).returning(table.c.id)
        return session.execute(stmt).scalar_one_or_none() is not None


def _forget(key):
    with write_transaction() as session:
        session.execute(delete(InboundEvent).where(InboundEvent.dedupe_key == key))


@bp.post("/wecom/callback")
def receive():
    params, reason = _signed_params()
    if params is None:
        return _forbidden(reason)
    try:
        crypto = _crypto()
    except ValueError as exc:
        return _misconfigured(exc)
    try:
        message = crypto.decrypt_message(request.get_data(cache=False), *params)
    except WeComCallbackError as exc:
        return _forbidden(exc.reason)

    # Only flat string fields go to the job (RQ pickles its arguments; keep them plain).
    parsed = {k: v for k, v in message.items() if isinstance(v, str)}
    key = dedupe_key(parsed)
    parsed["dedupe_key"] = key
    if not _record_first_sight(key):
        log.info("WeCom callback %s already taken; ignoring the retry", key)
        return Response("", status=200)

    from app.jobs import enqueue
    from bots.inbound import handle_inbound

    try:
        # Handlers are safe to repeat (decisions answer 409 the second time, replies are
        # deduped per inbound message), so a failed run is retried rather than lost: WeCom's
        # own retry would be ignored as a duplicate.
        enqueue(handle_inbound, parsed, queue="high", timeout=30, retry_intervals=(5, 30, 60))
    except Exception:
        # Could not hand it over (e.g. Redis down): forget it so WeCom's retry is taken.
        log.exception("WeCom callback %s could not be queued", key)
        db.session.rollback()
        _forget(key)
        return _error(503, "busy", "暂时无法处理，请稍后重试")
    return Response("", status=200)


def forget_old_inbound_events(days=3):
    """Delete dedupe records older than `days` (a periodic job). WeCom retries a message
    within seconds, so a few days of memory is plenty. Returns how many were deleted."""
    from datetime import timedelta

    with write_transaction() as session:
        return session.execute(
            delete(InboundEvent).where(InboundEvent.received_at < utcnow() - timedelta(days=days))
        ).rowcount
