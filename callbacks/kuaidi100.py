"""POST /logistics/kuaidi100/notify: Kuaidi100's tracking pushes (the `callbackurl` of every
subscription, KUAIDI100_CALLBACK_URL). Form-encoded `param=<JSON>&sign=<MD5(param + salt)>`;
verified here (`app.integrations.kuaidi100.verify_push`), stored by `app.tracking.pushes`.

Answers exactly what Kuaidi100 documents for a push it may stop sending —
`{"result": true, "returnCode": "200", "message": "成功"}` — also for a waybill no shipment
tracks (logged and ignored). A missing or wrong signature answers 403 with the error shape
and stores nothing; with Kuaidi100 not configured 503. When storing fails the answer is 500
with `"result": false`, so Kuaidi100 pushes again later.
"""
import logging

from flask import Blueprint, current_app, jsonify, request

from app.integrations import kuaidi100
from app.tracking import pushes

log = logging.getLogger(__name__)

bp = Blueprint("kuaidi100_notify", __name__)


def _error(status, code, text, **extra):
    resp = jsonify({**extra, "error": {"code": code, "message": text, "details": {}}})
    resp.status_code = status
    return resp


@bp.post("/logistics/kuaidi100/notify")
def kuaidi100_notify():
    salt = current_app.config.get("KUAIDI100_SALT")
    if not kuaidi100.configured(current_app.config):
        log.error("Kuaidi100 push received but Kuaidi100 is not configured")
        return _error(503, "kuaidi100_not_configured", "快递100 未配置（KUAIDI100_KEY / KUAIDI100_SALT / KUAIDI100_CALLBACK_URL）",
                      result=False, returnCode="503", message="未配置")
    try:
        param = kuaidi100.verify_push(request.form, salt)
    except kuaidi100.PushRejected as exc:
        log.warning("Kuaidi100 push rejected from %s: %s", request.remote_addr, exc)
        return _error(403, "bad_signature", f"推送验证失败：{exc}")
    last = param["lastResult"]
    try:
        outcome, shipment_ids = pushes.record_push(param)
    except Exception:  # answered 500 so Kuaidi100 pushes again; the cause is in the log
        log.exception("Kuaidi100 push for %s %s failed", last.get("com"), last.get("nu"))
        return _error(500, "push_not_stored", "处理失败，请稍后重试", result=False, returnCode="500",
                      message="处理失败")
    if outcome == "unknown":
        log.warning("Kuaidi100 push for unknown waybill %s %s ignored", last.get("com"), last.get("nu"))
    else:
        log.info("Kuaidi100 push for %s %s (state %s) stored for shipments %s", last.get("com"), last.get("nu"),
                 last.get("state"), shipment_ids)
    return jsonify(kuaidi100.PUSH_ACK)
