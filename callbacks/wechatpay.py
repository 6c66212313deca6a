"""POST /pay/wechat/notify: WeChat Pay's payment and refund notifications (set as
`notify_url` of every JSAPI prepay order and every refund, from WECHATPAY_NOTIFY_URL).
TRANSACTION.* events go to `app.funds.payments`, REFUND.* events to `app.funds.refunds`;
both are verified and decrypted the same way first.

Answers as WeChat Pay documents: 204 (no body) when the notification was handled — also
when it was a duplicate or of a kind we do not act on — and 4xx/5xx with
`{"code", "message"}` otherwise, so WeChat Pay sends it again later (over about 24 hours).
A forged or stale signature answers 401 and records nothing.
"""
import logging

from flask import Blueprint, current_app, jsonify, request

from app.funds import payments, refunds
from app.integrations.wechatpay import (
    NotificationRejected,
    WeChatPayNotConfigured,
    wechatpay_gateway,
)
from app.kernel.errors import DomainError

log = logging.getLogger(__name__)

bp = Blueprint("wechatpay_notify", __name__)


def _fail(status, code, message):
    resp = jsonify({"code": code, "message": message})
    resp.status_code = status
    return resp


@bp.post("/pay/wechat/notify")
def wechat_notify():
    try:
        gateway = wechatpay_gateway(current_app)
    except WeChatPayNotConfigured:
        log.error("WeChat Pay notification received but WeChat Pay is not configured")
        return _fail(500, "FAIL", "微信支付未配置")
    try:
        notification = gateway.parse_notification(request.headers, request.get_data())
    except NotificationRejected as exc:
        log.warning("WeChat Pay notification rejected from %s: %s", request.remote_addr, exc)
        return _fail(401, "SIGN_ERROR", str(exc))
    try:
        if str(notification.get("event_type", "")).startswith("REFUND."):
            outcome = refunds.record_wechat_notification(notification)
        else:
            outcome = payments.record_wechat_notification(notification)
    except payments.PaymentRejected as exc:
        return _fail(exc.status, exc.code, exc.message)
    except DomainError as exc:
        log.error("WeChat Pay notification %s not recorded: %s", notification.get("id"), exc.message)
        return _fail(500, "FAIL", exc.message)
    except Exception:  # answered 500 so WeChat Pay retries; the cause is in the log
        log.exception("WeChat Pay notification %s failed", notification.get("id"))
        return _fail(500, "FAIL", "处理失败，请稍后重试")
    log.info("WeChat Pay notification %s: %s", notification.get("id"), outcome)
    return "", 204
