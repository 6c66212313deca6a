"""The stand-in's WeChat Pay API v3 (direct merchant, JSAPI), part of `devtools.standin`.

Routes (as api.mch.weixin.qq.com answers them):
    POST /v3/pay/transactions/jsapi                          JSAPI prepay → {"prepay_id"}
    GET  /v3/pay/transactions/out-trade-no/{no}?mchid=        query → the transaction
    POST /v3/pay/transactions/out-trade-no/{no}/close         close → 204
    POST /v3/refund/domestic/refunds                          refund a paid order → the refund (PROCESSING)
    GET  /v3/refund/domestic/refunds/{out_refund_no}          query → the refund
Control routes (not WeChat Pay):
    POST /_standin/pay/{no}/pay    the payer confirms in WeChat: the order becomes SUCCESS
                                   and a TRANSACTION.SUCCESS notification is POSTed to its notify_url
    POST /_standin/pay/refunds/{out_refund_no}/settle?status=SUCCESS|ABNORMAL|CLOSED
                                   the refund reaches its end state and a REFUND.* notification
                                   is POSTed to its notify_url
    GET  /_standin/pay/orders      the prepay orders (and refunds) the stand-in knows
    GET  /_standin/pay/refunds     the refunds the stand-in was asked for, oldest first (JSON)

Every request must carry the merchant's signature (`Authorization: WECHATPAY2-SHA256-RSA2048
mchid=..,nonce_str=..,signature=..,timestamp=..,serial_no=..` over
"METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n", RSA-SHA256 with the merchant key whose
public half and serial the stand-in was given); otherwise 401 SIGN_ERROR. Answers and
notifications are signed with the platform key (`Wechatpay-Signature` over
"TIMESTAMP\\nNONCE\\nBODY\\n", `Wechatpay-Serial` = the platform public key id); a
notification's resource is AES-256-GCM encrypted with the APIv3 key.

Plays the other side, so it uses `cryptography` directly, never the merchant SDK.
"""
import base64
import html
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Response, jsonify, request

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 5 * 60
OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
CHINA = timezone(timedelta(hours=8))
AUTH_RE = re.compile(r'(\w+)="([^"]*)"')


def _now_rfc3339():
    return datetime.now(CHINA).replace(microsecond=0).isoformat()


class PayState:
    """The merchant the stand-in knows (keys) and its prepay orders; access under the lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self.merchant = None
        self._orders = {}
        self._refunds = {}
        self.notifications = []

    def configure(self, *, mchid, appid, merchant_public_key, merchant_serial_no, apiv3_key,
                  platform_private_key, platform_public_key_id):
        """PEM texts for the keys. `platform_private_key` signs answers and notifications."""
        with self._lock:
            self.merchant = {
                "mchid": mchid, "appid": appid, "serial_no": merchant_serial_no, "apiv3_key": apiv3_key,
                "public_key": serialization.load_pem_public_key(merchant_public_key.encode()),
                "platform_key": serialization.load_pem_private_key(platform_private_key.encode(), password=None),
                "platform_key_id": platform_public_key_id,
            }

    def reset(self):
        with self._lock:
            self._orders = {}
            self._refunds = {}
            self.notifications = []

    def get_refund(self, out_refund_no):
        with self._lock:
            refund = self._refunds.get(out_refund_no)
            return dict(refund) if refund else None

    def refunds(self):
        with self._lock:
            return [dict(r) for r in self._refunds.values()]

    def create_refund(self, body):
        """Refund part of a paid order as WeChat Pay does: (http status, answer body)."""
        amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
        no = body.get("out_refund_no")
        for name, ok in (
            ("out_refund_no", isinstance(no, str) and OUT_REFUND_NO_RE.match(no)),
            ("out_trade_no", isinstance(body.get("out_trade_no"), str) or isinstance(body.get("transaction_id"), str)),
            ("amount.refund", type(amount.get("refund")) is int and amount["refund"] > 0),
            ("amount.total", type(amount.get("total")) is int and amount["total"] > 0),
            ("amount.currency", amount.get("currency") == "CNY"),
            ("notify_url", body.get("notify_url") is None or (
                isinstance(body["notify_url"], str) and body["notify_url"].startswith(("http://", "https://")))),
        ):
            if not ok:
                return 400, {"code": "PARAM_ERROR", "message": f"参数错误：{name}"}
        with self._lock:
            order = next((o for o in self._orders.values() if o.get("out_trade_no") == body.get("out_trade_no")
                          or (body.get("transaction_id") and o.get("transaction_id") == body["transaction_id"])), None)
            if order is None:
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
            if order["trade_state"] != "SUCCESS":
                return 400, {"code": "INVALID_REQUEST", "message": "订单未支付，不能退款"}
            if amount["total"] != order["total"]:
                return 400, {"code": "PARAM_ERROR", "message": "订单金额与原订单不一致"}
            existing = self._refunds.get(no)
            if existing is not None:
                if existing["out_trade_no"] != order["out_trade_no"] or existing["refund"] != amount["refund"]:
                    return 400, {"code": "INVALID_REQUEST", "message": "退款单号已用于另一笔退款"}
                return 200, self.refund_object(existing)
            refunded = sum(r["refund"] for r in self._refunds.values()
                           if r["out_trade_no"] == order["out_trade_no"] and r["status"] in ("PROCESSING", "SUCCESS"))
            if refunded + amount["refund"] > order["total"]:
                return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
            refund = self._refunds[no] = {
                "out_refund_no": no, "refund_id": "50" + "".join(secrets.choice("0123456789") for _ in range(27)),
                "out_trade_no": order["out_trade_no"], "transaction_id": order["transaction_id"],
                "refund": amount["refund"], "total": order["total"], "status": "PROCESSING",
                "notify_url": body.get("notify_url") or order["notify_url"], "reason": body.get("reason", ""),
                "create_time": _now_rfc3339(), "created_at": time.time(),
            }
            return 200, self.refund_object(refund)

    def settle_refund(self, out_refund_no, status="SUCCESS"):
        """The refund reached the payer (SUCCESS) or did not (ABNORMAL / CLOSED); None if unknown."""
        with self._lock:
            refund = self._refunds.get(out_refund_no)
            if refund is None or status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
                return None
            refund["status"] = status
            if status == "SUCCESS":
                refund["success_time"] = _now_rfc3339()
            return dict(refund)

    def refund_object(self, refund):
        """A refund as the refund and query routes answer it."""
        body = {
            "refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
            "transaction_id": refund["transaction_id"], "out_trade_no": refund["out_trade_no"], "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": refund["create_time"], "status": refund["status"],
            "funds_account": "AVAILABLE", "promotion_detail": [],
            "amount": {"total": refund["total"], "refund": refund["refund"], "from": [], "payer_total": refund["total"],
                       "payer_refund": refund["refund"], "settlement_refund": refund["refund"],
                       "settlement_total": refund["total"], "discount_refund": 0, "currency": "CNY", "refund_fee": 0},
        }
        if refund.get("success_time"):
            body["success_time"] = refund["success_time"]
        return body

    def refund_resource(self, refund):
        """A refund as a REFUND.* notification carries it (decrypted)."""
        body = {
            "mchid": self.merchant["mchid"], "out_trade_no": refund["out_trade_no"],
            "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
            "refund_id": refund["refund_id"], "refund_status": refund["status"],
            "user_received_account": "支付用户零钱",
            "amount": {"total": refund["total"], "refund": refund["refund"], "payer_total": refund["total"],
                       "payer_refund": refund["refund"]},
        }
        if refund.get("success_time"):
            body["success_time"] = refund["success_time"]
        return body

    def get(self, out_trade_no):
        with self._lock:
            order = self._orders.get(out_trade_no)
            return dict(order) if order else None

    def put(self, no, **changes):
        with self._lock:
            order = self._orders.setdefault(no, {})
            order.update(changes)
            return dict(order)

    def orders(self):
        with self._lock:
            return [dict(o) for o in self._orders.values()]

    # --- signatures ----------------------------------------------------------------

    def sign(self, message, key=None):
        key = key or self.merchant["platform_key"]
        return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    def signed_headers(self, body, key=None):
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": self.sign(f"{timestamp}\n{nonce}\n{body}\n", key),
            "Wechatpay-Serial": self.merchant["platform_key_id"], "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            "Request-ID": secrets.token_hex(16),
        }

    def check_authorization(self, method, url, body, header):
        """None if the merchant signed this request, else the reason (→ 401 SIGN_ERROR)."""
        merchant = self.merchant
        scheme, _, params = (header or "").partition(" ")
        if scheme != SIGNATURE_TYPE:
            return "Authorization 的认证类型不是 WECHATPAY2-SHA256-RSA2048"
        fields = dict(AUTH_RE.findall(params))
        if fields.get("mchid") != merchant["mchid"]:
            return "mchid 不正确"
        if fields.get("serial_no") != merchant["serial_no"]:
            return "商户证书序列号不正确"
        timestamp = fields.get("timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
            return "时间戳超出允许范围"
        message = f"{method}\n{url}\n{timestamp}\n{fields.get('nonce_str', '')}\n{body}\n"
        try:
            merchant["public_key"].verify(
                base64.b64decode(fields.get("signature", "")), message.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return "签名验证不通过"
        return None

    # --- notifications ---------------------------------------------------------------

    def transaction(self, order):
        """The transaction object as query answers it and a notification carries it."""
        merchant = self.merchant
        body = {
            "appid": order["appid"], "mchid": merchant["mchid"], "out_trade_no": order["out_trade_no"],
            "trade_type": "JSAPI", "trade_state": order["trade_state"],
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭"}[order["trade_state"]],
            "attach": order.get("attach", ""), "payer": {"openid": order["openid"]},
            "amount": {"total": order["total"], "currency": "CNY"},
        }
        if order["trade_state"] == "SUCCESS":
            body.update({
                "transaction_id": order["transaction_id"], "bank_type": "OTHERS", "success_time": order["success_time"],
            })
            body["amount"].update({"payer_total": order["total"], "payer_currency": "CNY"})
        return body

    def notification(self, out_trade_no, *, total=None, key=None, timestamp_offset=0, apiv3_key=None):
        """(headers, body bytes) of the TRANSACTION.SUCCESS notification for a paid order.
        For tests: `total` overrides the amount inside, `key` signs with another key (a
        forgery), `timestamp_offset` shifts the signed timestamp, `apiv3_key` encrypts
        with another key."""
        order = self.get(out_trade_no)
        resource = self.transaction(order)
        if total is not None:
            resource["amount"]["total"] = resource["amount"]["payer_total"] = total
        return self._notification("TRANSACTION.SUCCESS", "支付成功", "transaction", resource, key=key,
                                  timestamp_offset=timestamp_offset, apiv3_key=apiv3_key)

    def refund_notification(self, number, *, refund=None, key=None, timestamp_offset=0, apiv3_key=None,
                            **overrides):
        """(headers, body bytes) of the REFUND.* notification of a refund in its current
        state (REFUND.SUCCESS / ABNORMAL / CLOSED). For tests, as `notification`; `refund`
        overrides the amount refunded inside, `overrides` any other resource field."""
        stored = self.get_refund(number)
        resource = {**self.refund_resource(stored), **overrides}
        if refund is not None:
            resource["amount"] = {**resource["amount"], "refund": refund, "payer_refund": refund}
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}.get(stored["status"], "退款")
        return self._notification(f"REFUND.{stored['status']}", summary, "refund", resource, key=key,
                                  timestamp_offset=timestamp_offset, apiv3_key=apiv3_key)

    def _notification(self, event_type, summary, original_type, resource, *, key, timestamp_offset, apiv3_key):
        nonce = secrets.token_hex(6)  # 12 characters: AES-GCM's 96-bit nonce
        associated_data = original_type
        aes_key = (apiv3_key or self.merchant["apiv3_key"]).encode()
        ciphertext = AESGCM(aes_key).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), associated_data.encode()
        )
        body = json.dumps({
            "id": "EV-" + secrets.token_hex(10), "create_time": _now_rfc3339(), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": summary,
            "resource": {
                "original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": associated_data, "nonce": nonce,
            },
        }, ensure_ascii=False)
        timestamp, sig_nonce = str(int(time.time()) + timestamp_offset), secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": sig_nonce,
            "Wechatpay-Signature": self.sign(f"{timestamp}\n{sig_nonce}\n{body}\n", key),
            "Wechatpay-Serial": self.merchant["platform_key_id"], "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }
        return headers, body.encode()

    def mark_paid(self, out_trade_no):
        """The payer confirmed: NOTPAY → SUCCESS (None if there is no such payable order)."""
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None or order["trade_state"] != "NOTPAY":
                return None
            order.update(trade_state="SUCCESS", success_time=_now_rfc3339(),
                         transaction_id="4200" + "".join(secrets.choice("0123456789") for _ in range(24)))
            return dict(order)

    def send_notification(self, out_trade_no):
        """POST the notification to the order's notify_url: (HTTP status or None, text)."""
        order = self.get(out_trade_no)
        headers, body = self.notification(out_trade_no)
        return self._post(order["notify_url"], out_trade_no, headers, body)

    def send_refund_notification(self, out_refund_no):
        """POST the refund's REFUND.* notification to its notify_url: (HTTP status or None, text)."""
        refund = self.get_refund(out_refund_no)
        headers, body = self.refund_notification(out_refund_no)
        return self._post(refund["notify_url"], out_refund_no, headers, body)

    def _post(self, url, out_trade_no, headers, body):
        try:
            resp = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            result = (None, f"推送失败：{exc.__class__.__name__}")
        else:
            result = (resp.status_code, resp.text)
        with self._lock:
            self.notifications.append({"out_trade_no": out_trade_no, "status": result[0], "answer": result[1]})
        return result


def register_pay_routes(app, pay):
    """Add the WeChat Pay routes to the stand-in's Flask app; `pay` is its PayState."""

    def answer(status, body=None):
        text = "" if body is None else json.dumps(body, ensure_ascii=False)
        resp = Response(text, status=status, mimetype="application/json" if body is not None else None)
        if body is not None:
            resp.headers["Content-Type"] = "application/json; charset=utf-8"
        if 200 <= status < 300:
            resp.headers.update(pay.signed_headers(text))
        return resp

    def error(status, code, message):
        return answer(status, {"code": code, "message": message})

    def authorized():
        """None when the merchant's signature checks out, else the 401 answer."""
        if pay.merchant is None:
            return error(500, "SYSTEM_ERROR", "模拟服务未配置商户（由 demo serve 或测试设置）")
        url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        problem = pay.check_authorization(request.method, url, request.get_data(as_text=True),
                                          request.headers.get("Authorization"))
        return error(401, "SIGN_ERROR", problem) if problem else None

    @app.post("/v3/pay/transactions/jsapi")
    def pay_jsapi():
        refused = authorized()
        if refused:
            return refused
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return error(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        merchant = pay.merchant
        amount, payer = body.get("amount") or {}, body.get("payer") or {}
        for name, ok in (
            ("appid", isinstance(body.get("appid"), str) and body.get("appid")),
            ("mchid", isinstance(body.get("mchid"), str) and body.get("mchid")),
            ("description", isinstance(body.get("description"), str) and 0 < len(body["description"]) <= 127),
            ("out_trade_no", isinstance(body.get("out_trade_no"), str) and OUT_TRADE_NO_RE.match(body["out_trade_no"])),
            ("notify_url", isinstance(body.get("notify_url"), str) and body["notify_url"].startswith(("http://", "https://"))),
            ("amount.total", type(amount.get("total")) is int and amount["total"] > 0),
            ("payer.openid", isinstance(payer.get("openid"), str) and payer.get("openid")),
        ):
            if not ok:
                return error(400, "PARAM_ERROR", f"参数错误：{name}")
        if body["mchid"] != merchant["mchid"] or body["appid"] != merchant["appid"]:
            return error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        no = body["out_trade_no"]
        existing = pay.get(no)
        if existing:
            if existing["trade_state"] == "SUCCESS":
                return error(400, "ORDERPAID", "该订单已支付")
            if existing["trade_state"] == "CLOSED":
                return error(400, "ORDER_CLOSED", "订单已关闭")
            if (existing["total"], existing["openid"], existing["description"]) != (
                    amount["total"], payer["openid"], body["description"]):
                return error(400, "OUT_TRADE_NO_USED", "商户订单号重复")
            return answer(200, {"prepay_id": existing["prepay_id"]})
        prepay_id = "wx" + time.strftime("%d%H%M%S") + secrets.token_hex(12)
        pay.put(no, out_trade_no=no, appid=body["appid"], description=body["description"], total=amount["total"],
                openid=payer["openid"], notify_url=body["notify_url"], attach=body.get("attach", ""),
                prepay_id=prepay_id, trade_state="NOTPAY", created_at=time.time())
        return answer(200, {"prepay_id": prepay_id})

    @app.get("/v3/pay/transactions/out-trade-no/<no>")
    def pay_query(no):
        refused = authorized()
        if refused:
            return refused
        if request.args.get("mchid") != pay.merchant["mchid"]:
            return error(400, "PARAM_ERROR", "参数错误：mchid")
        order = pay.get(no)
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        return answer(200, pay.transaction(order))

    @app.post("/v3/pay/transactions/out-trade-no/<no>/close")
    def pay_close(no):
        refused = authorized()
        if refused:
            return refused
        body = request.get_json(force=True, silent=True) or {}
        if body.get("mchid") != pay.merchant["mchid"]:
            return error(400, "PARAM_ERROR", "参数错误：mchid")
        order = pay.get(no)
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order["trade_state"] == "SUCCESS":
            return error(400, "ORDERPAID", "订单已支付")
        pay.put(no, trade_state="CLOSED")
        return answer(204)

    @app.post("/v3/refund/domestic/refunds")
    def refund_create():
        refused = authorized()
        if refused:
            return refused
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return error(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        status, answer_body = pay.create_refund(body)
        return answer(status, answer_body)

    @app.get("/v3/refund/domestic/refunds/<no>")
    def refund_query(no):
        refused = authorized()
        if refused:
            return refused
        refund = pay.get_refund(no)
        if refund is None:
            return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return answer(200, pay.refund_object(refund))

    @app.post("/_standin/pay/refunds/<no>/settle")
    def refund_settles(no):
        status = request.args.get("status", "SUCCESS")
        refund = pay.settle_refund(no, status)
        if refund is None:
            return jsonify({"message": f"没有退款单 {no}（或状态 {status} 不对）"}), 404
        code, _text = pay.send_refund_notification(no)
        ok = code in (200, 204)
        return jsonify({"message": f"{REFUND_STATE_LABELS.get(status, status)}，通知已推送到 {refund['notify_url']}，应答 HTTP {code}",
                        "ok": ok}), 200 if ok else 502

    @app.post("/_standin/pay/<no>/pay")
    def payer_confirms(no):
        order = pay.mark_paid(no)
        if order is None:
            return jsonify({"message": f"没有待支付的订单 {no}"}), 404
        status, text = pay.send_notification(no)
        ok = status in (200, 204)
        return jsonify({"message": f"已支付，通知已推送到 {order['notify_url']}，应答 HTTP {status}", "ok": ok,
                        "transaction_id": order["transaction_id"]}), 200 if ok else 502

    @app.get("/_standin/pay/orders")
    def pay_orders():
        if request.args.get("format") == "html":
            return _orders_html(pay.orders()) + _refunds_html(pay.refunds())
        return jsonify(pay.orders())

    @app.get("/_standin/pay/refunds")
    def pay_refunds():
        """The refunds the stand-in was asked for, oldest first: what a reader needs to settle one."""
        return jsonify(sorted(pay.refunds(), key=lambda r: r["created_at"]))


STATE_LABELS = {"NOTPAY": "待支付", "SUCCESS": "已支付", "CLOSED": "已关闭"}
REFUND_STATE_LABELS = {"PROCESSING": "退款处理中", "SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


def _refunds_html(refunds):
    """The demo page's refunds, each one still processing with buttons that settle it."""
    if not refunds:
        return ""
    rows = []
    for refund in sorted(refunds, key=lambda r: r.get("created_at", 0), reverse=True)[:20]:
        no = json.dumps(refund["out_refund_no"])
        buttons = (f"<button onclick='settleRefund({no}, \"SUCCESS\")'>模拟退款到账</button> "
                   f"<button onclick='settleRefund({no}, \"ABNORMAL\")'>模拟退款异常</button>"
                   if refund["status"] == "PROCESSING" else "")
        rows.append(f"<tr><td>{html.escape(refund['out_refund_no'])}</td><td>{html.escape(refund['out_trade_no'])}</td>"
                    f"<td>{refund['refund'] / 100:.2f} 元</td><td>{REFUND_STATE_LABELS.get(refund['status'], refund['status'])}</td>"
                    f"<td>{buttons}</td></tr>")
    return ("<h3>退款</h3><table><tr><th>商户退款单号</th><th>商户订单号</th><th>金额</th><th>状态</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _orders_html(orders):
    """The demo page's list of prepay orders, each unpaid one with a button that plays the payer."""
    if not orders:
        return "<p>还没有微信支付订单。经销商调用 <code>POST /orders/&lt;订单号&gt;/pay</code> 后会出现在这里。</p>"
    rows = []
    for order in sorted(orders, key=lambda o: o.get("created_at", 0), reverse=True)[:20]:
        no = html.escape(order["out_trade_no"])
        button = (f"<button onclick='payOrder({json.dumps(order['out_trade_no'])})'>模拟付款</button>"
                  if order["trade_state"] == "NOTPAY" else "")
        rows.append(f"<tr><td>{no}</td><td>{order['total'] / 100:.2f} 元</td>"
                    f"<td>{STATE_LABELS.get(order['trade_state'], order['trade_state'])}</td><td>{button}</td></tr>")
    return "<table><tr><th>商户订单号</th><th>金额</th><th>状态</th><th></th></tr>" + "".join(rows) + "</table>"
