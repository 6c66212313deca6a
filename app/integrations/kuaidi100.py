"""Kuaidi100 (快递100) subscribe-and-push tracking: the request and signature shapes, and
nothing else (what a push means for a shipment is `app.tracking`).

Subscribe (`subscribe`): `POST KUAIDI100_URL` (https://poll.kuaidi100.com/poll), form-encoded
`schema=json&param=<JSON>` where param is
`{"company", "number", "key", "parameters": {"callbackurl", "salt", "resultv2", "phone"}}`
(`phone` only when known: SF Express 顺丰 needs the receiver's or sender's phone). The answer
is `{"result": true, "returnCode": "200", "message": "提交成功"}`; 501 (already subscribed and
still tracked) counts as success; 500 is Kuaidi100's own trouble (retry later); 600/601 (the
key is wrong or expired), 700 (bad data or callback URL), 701 (carrier refused), 702 (carrier
not recognised) are refusals.

Push (`verify_push`): Kuaidi100 POSTs to the callback URL, form-encoded `param=<JSON>&sign=<MD5
(param + salt), upper-case hex>`; param is `{"status": polling|shutdown|abort|updateall,
"message", "lastResult": {"nu", "com", "state", "ischeck", "data": [{"context", "time", "ftime",
"areaName", "status"}, ...] newest first}}`. The receiver answers `PUSH_ACK` as JSON.

Not configured (no KUAIDI100_KEY, KUAIDI100_SALT or KUAIDI100_CALLBACK_URL): `configured()` is
False and nothing is subscribed (docs/integration/kuaidi100.md).
"""
import hashlib
import hmac
import json

import requests

from app.config import OFFICIAL_KUAIDI100_URL as OFFICIAL_URL
from app.kernel.errors import DeliveryError

SETTINGS = ("KUAIDI100_KEY", "KUAIDI100_SALT", "KUAIDI100_CALLBACK_URL")
# What the push receiver answers when it took the push (also for a waybill it does not know).
PUSH_ACK = {"result": True, "returnCode": "200", "message": "成功"}
SUBSCRIBED, ALREADY_SUBSCRIBED = "200", "501"
TRANSIENT_CODES = ("500",)
RETURN_CODE_TEXT = {
    "500": "快递100 服务器错误",
    "600": "授权 key 无效（KUAIDI100_KEY）",
    "601": "授权 key 已过期",
    "700": "订阅数据有误（快递公司、单号或回调地址）",
    "701": "快递100 拒绝订阅该快递公司",
    "702": "快递100 识别不到该单号对应的快递公司",
}

# The carriers the console offers (app.orders.shipments.COMMON_CARRIERS) and common ways of
# writing them -> Kuaidi100's company code. Other names are not subscribed (no code to send).
COMPANY_CODES = {
    "顺丰速运": "shunfeng", "顺丰": "shunfeng", "顺丰快递": "shunfeng",
    "京东物流": "jd", "京东快递": "jd", "京东": "jd",
    "中通快递": "zhongtong", "中通": "zhongtong",
    "圆通速递": "yuantong", "圆通快递": "yuantong", "圆通": "yuantong",
    "韵达快递": "yunda", "韵达速递": "yunda", "韵达": "yunda",
    "申通快递": "shentong", "申通": "shentong",
    "德邦快递": "debangkuaidi", "德邦": "debangkuaidi", "德邦物流": "debangwuliu",
    "中国邮政 EMS": "ems", "EMS": "ems", "邮政 EMS": "ems", "中国邮政": "youzhengguonei",
    "极兔速递": "jtexpress", "极兔": "jtexpress",
}
NEEDS_PHONE = ("shunfeng",)


class Kuaidi100Error(DeliveryError):
    """Kuaidi100 refused a subscription (`errcode` = its returnCode as an int) or could not be
    asked (`errcode` None). `permanent` is False for its 500 and for network/HTTP trouble."""

    def __init__(self, errcode, errmsg, *, permanent=True):
        super().__init__(errcode, errmsg)
        self.permanent = permanent


class PushRejected(Exception):
    """A push failed verification (missing fields, bad signature, not JSON)."""


def configured(config):
    return all(config.get(name) for name in SETTINGS)


def company_code(carrier):
    """Kuaidi100's code for a carrier as staff typed it, or None."""
    name = " ".join((carrier or "").split())
    return COMPANY_CODES.get(name) or COMPANY_CODES.get(name.upper())


def sign(param_text, salt):
    """The push signature: MD5 of the param text followed by the salt, upper-case hex."""
    return hashlib.md5((param_text + salt).encode("utf-8")).hexdigest().upper()


def subscribe_param(config, *, company, number, phone=None):
    """The `param` JSON object of a subscription."""
    parameters = {"callbackurl": config["KUAIDI100_CALLBACK_URL"], "salt": config["KUAIDI100_SALT"], "resultv2": "1"}
    if phone:
        parameters["phone"] = phone
    return {"company": company, "number": number, "key": config["KUAIDI100_KEY"], "parameters": parameters}


def subscribe(config, *, company, number, phone=None, session=None):
    """Subscribe one waybill; returns the returnCode ("200", or "501" when it already was).
    Raises `Kuaidi100Error` otherwise."""
    param = json.dumps(subscribe_param(config, company=company, number=number, phone=phone),
                       ensure_ascii=False, separators=(",", ":"))
    url = config.get("KUAIDI100_URL") or OFFICIAL_URL
    try:
        resp = (session or requests).post(url, data={"schema": "json", "param": param},
                                          timeout=config.get("KUAIDI100_HTTP_TIMEOUT", 5))
    except requests.RequestException as exc:
        raise Kuaidi100Error(None, f"无法连接快递100：{exc.__class__.__name__}", permanent=False) from None
    if resp.status_code >= 500:
        raise Kuaidi100Error(None, f"快递100 应答 HTTP {resp.status_code}", permanent=False)
    try:
        body = resp.json()
    except ValueError:
        raise Kuaidi100Error(None, f"快递100 应答不是 JSON（HTTP {resp.status_code}）", permanent=False) from None
    code = str(body.get("returnCode", "")) if isinstance(body, dict) else ""
    if code in (SUBSCRIBED, ALREADY_SUBSCRIBED):
        return code
    message = (body.get("message") if isinstance(body, dict) else None) or RETURN_CODE_TEXT.get(code, "订阅失败")
    errcode = int(code) if code.isdigit() else None
    raise Kuaidi100Error(errcode, f"{code} {message}".strip(), permanent=code not in TRANSIENT_CODES)


def verify_push(form, salt):
    """The push's param as a dict, after checking its signature; raises `PushRejected`."""
    param_text, given = form.get("param"), form.get("sign")
    if not param_text or not given:
        raise PushRejected("缺少 param 或 sign")
    if not hmac.compare_digest(sign(param_text, salt), given.strip().upper()):
        raise PushRejected("签名不符")
    try:
        param = json.loads(param_text)
    except ValueError:
        raise PushRejected("param 不是 JSON") from None
    if not isinstance(param, dict) or not isinstance(param.get("lastResult"), dict):
        raise PushRejected("param 缺少 lastResult")
    return param
