"""WeChat Pay API v3 (direct merchant, mini-program JSAPI): the only module importing
the SDK, `wechatpayv3` (https://github.com/minibear2021/wechatpayv3).

What the SDK does for us, and how we use it:
- signs every request: `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,
  signature=..,timestamp=..,serial_no=..`, an RSA-SHA256 signature with the merchant's
  private key over "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n";
- verifies every 2xx answer's `Wechatpay-Signature` with the platform public key
  (the "微信支付公钥" mode: `public_key` + `public_key_id`, no certificate download);
- verifies a notification's signature the same way and decrypts its resource
  (AEAD_AES_256_GCM with the APIv3 key; the nonce and associated_data are in the body);
- signs the `wx.requestPayment` parameters (RSA over "appId\\ntimeStamp\\nnonceStr\\npackage\\n").

What it does not, and this module adds: the base URL (`WECHATPAY_API_BASE`; the SDK has
no option, so the gateway sets its `_core._gate_way`), the notification's timestamp
freshness (5 minutes, against replays), error answers turned into `WeChatPayError`
(`unavailable` for network errors and 5xx, which may be retried), and a request timeout.
"""
import json
import logging
import secrets
import threading
import time
from pathlib import Path

import requests
from wechatpayv3 import SignType, WeChatPay, WeChatPayType

log = logging.getLogger(__name__)

NOTIFY_MAX_SKEW_SECONDS = 5 * 60
SETTINGS = (
    "WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_PRIVATE_KEY", "WECHATPAY_CERT_SERIAL_NO",
    "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_NOTIFY_URL",
)


class WeChatPayError(Exception):
    """WeChat Pay refused the request (`code`/`message` as WeChat Pay answered them, e.g.
    ORDERPAID, ORDER_CLOSED, PARAM_ERROR) or could not be asked (`unavailable`)."""

    def __init__(self, code, message, *, http_status=None, unavailable=False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.unavailable = unavailable


class WeChatPayNotConfigured(WeChatPayError):
    def __init__(self, missing):
        super().__init__("NOT_CONFIGURED", "缺少设置：" + "、".join(missing))
        self.missing = missing


class NotificationRejected(Exception):
    """A payment or refund notification failed verification (signature, timestamp, decryption, shape)."""


class WeChatPayGateway:
    def __init__(self, *, mchid, appid, private_key, cert_serial_no, apiv3_key, public_key, public_key_id,
                 api_base, notify_url, timeout=5):
        self.mchid = mchid
        self.appid = appid
        self.notify_url = notify_url
        self.public_key_id = public_key_id
        self._pay = WeChatPay(
            wechatpay_type=WeChatPayType.MINIPROG, mchid=mchid, private_key=private_key,
            cert_serial_no=cert_serial_no, appid=appid, apiv3_key=apiv3_key, notify_url=notify_url,
            public_key=public_key, public_key_id=public_key_id, timeout=timeout,
        )
        # No constructor option for the host: every request is _gate_way + path.
        self._pay._core._gate_way = api_base.rstrip("/")

    @classmethod
    def from_config(cls, config):
        missing = [name for name in SETTINGS if not config.get(name)]
        if missing:
            raise WeChatPayNotConfigured(missing)
        return cls(
            mchid=config["WECHATPAY_MCHID"], appid=config["WECHATPAY_APPID"],
            private_key=_read_key(config["WECHATPAY_PRIVATE_KEY"], "WECHATPAY_PRIVATE_KEY"),
            cert_serial_no=config["WECHATPAY_CERT_SERIAL_NO"], apiv3_key=config["WECHATPAY_APIV3_KEY"],
            public_key=_read_key(config["WECHATPAY_PUBLIC_KEY"], "WECHATPAY_PUBLIC_KEY"),
            public_key_id=config["WECHATPAY_PUBLIC_KEY_ID"], api_base=config["WECHATPAY_API_BASE"],
            notify_url=config["WECHATPAY_NOTIFY_URL"], timeout=config.get("WECHAT_HTTP_TIMEOUT") or 5,
        )

    # --- calls ------------------------------------------------------------------

    def _call(self, what, fn, **kwargs):
        try:
            status, text = fn(**kwargs)
        except requests.RequestException as exc:
            raise WeChatPayError("NETWORK_ERROR", f"{what}：{exc.__class__.__name__}", unavailable=True) from exc
        except Exception as exc:  # the SDK raises bare Exception, e.g. for a bad answer signature
            raise WeChatPayError("SDK_ERROR", f"{what}：{exc}", unavailable=True) from exc
        if 200 <= status < 300:
            return json.loads(text) if isinstance(text, str) and text.strip() else {}
        try:
            body = json.loads(text)
        except (TypeError, ValueError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        raise WeChatPayError(
            body.get("code") or f"HTTP_{status}", body.get("message") or f"{what}失败（HTTP {status}）",
            http_status=status, unavailable=status >= 500 or status == 429,
        )

    def create_jsapi(self, *, out_trade_no, description, amount_fen, openid, time_expire=None):
        """POST /v3/pay/transactions/jsapi: the prepay_id for `wx.requestPayment`."""
        answer = self._call(
            "JSAPI 下单", self._pay.pay, description=description[:127], out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"}, payer={"openid": openid},
            time_expire=time_expire, pay_type=WeChatPayType.MINIPROG,
        )
        prepay_id = answer.get("prepay_id")
        if not prepay_id:
            raise WeChatPayError("BAD_ANSWER", "JSAPI 下单应答缺少 prepay_id", unavailable=True)
        return prepay_id

    def query(self, out_trade_no):
        """GET /v3/pay/transactions/out-trade-no/{out_trade_no}: the transaction (trade_state...)."""
        return self._call("查询订单", self._pay.query, out_trade_no=out_trade_no)

    def close(self, out_trade_no):
        """POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close (204)."""
        self._call("关闭订单", self._pay.close, out_trade_no=out_trade_no)

    def refund(self, *, out_refund_no, out_trade_no, refund_fen, total_fen, reason=None, notify_url=None):
        """POST /v3/refund/domestic/refunds: refund `refund_fen` of the payment `out_trade_no`
        (whose amount was `total_fen`). Answers the refund: {refund_id, out_refund_no, status
        (SUCCESS / PROCESSING / CLOSED / ABNORMAL), amount...}. The same out_refund_no asked
        again is the same refund at WeChat Pay, so a call whose answer was lost may be repeated."""
        return self._call(
            "申请退款", self._pay.refund, out_refund_no=out_refund_no, out_trade_no=out_trade_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            reason=(reason or None) and reason[:80], notify_url=notify_url,
        )

    def query_refund(self, out_refund_no):
        """GET /v3/refund/domestic/refunds/{out_refund_no}: the refund as it stands."""
        return self._call("查询退款", self._pay.query_refund, out_refund_no=out_refund_no)

    def request_payment_params(self, prepay_id, *, timestamp=None, nonce=None):
        """What `wx.requestPayment` takes: {appId, timeStamp, nonceStr, package, signType, paySign}."""
        timestamp = str(int(timestamp if timestamp is not None else time.time()))
        nonce = nonce or secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        signature = self._pay.sign([self.appid, timestamp, nonce, package], SignType.RSA_SHA256)
        return {"appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": signature}

    # --- notifications -------------------------------------------------------------

    def parse_notification(self, headers, body, *, now=None):
        """The verified notification with its resource decrypted: {id, create_time,
        event_type, resource_type, summary, resource: {transaction...} or {refund...}}
        (payments: TRANSACTION.SUCCESS; refunds: REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED).

        Raises NotificationRejected for a missing or forged signature, a timestamp more
        than 5 minutes off, a resource that does not decrypt with the APIv3 key, or a
        body that is not a notification."""
        timestamp = headers.get("Wechatpay-Timestamp", "")
        if not timestamp.isdigit():
            raise NotificationRejected("缺少或无效的 Wechatpay-Timestamp")
        if abs((now if now is not None else time.time()) - int(timestamp)) > NOTIFY_MAX_SKEW_SECONDS:
            raise NotificationRejected("Wechatpay-Timestamp 超过 5 分钟")
        if headers.get("Wechatpay-Serial") != self.public_key_id:
            raise NotificationRejected("Wechatpay-Serial 不是配置的微信支付公钥 ID")
        raw_headers = headers
        headers = {name: raw_headers.get(name, "") for name in (
            "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial",
        )}
        # WeChat Pay signs with SHA256-RSA2048 and may omit the header; the SDK wants it spelled out.
        headers["Wechatpay-Signature-Type"] = raw_headers.get("Wechatpay-Signature-Type") or "WECHATPAY2-SHA256-RSA2048"
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                raise NotificationRejected("通知不是 UTF-8 文本") from None
        try:
            result = self._pay.callback(headers, body)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise NotificationRejected(f"通知格式不对：{exc.__class__.__name__}") from None
        except Exception as exc:  # the SDK's bare Exception (unsupported algorithm...)
            raise NotificationRejected(f"通知无法处理：{exc}") from None
        if not result:
            raise NotificationRejected("签名验证失败或资源无法解密")
        if not isinstance(result.get("resource"), dict):
            raise NotificationRejected("通知资源不是对象")
        return result


def _read_key(path, name):
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise WeChatPayError("KEY_UNREADABLE", f"{name} 指向的文件无法读取：{path}（{exc.strerror}）") from None


_lock = threading.Lock()


def wechatpay_gateway(app):
    """The app's gateway, built once (keys read and parsed once). Raises
    WeChatPayNotConfigured when a setting is missing."""
    with _lock:
        gateway = app.extensions.get("dinghuo_wechatpay_gateway")
        if gateway is None:
            gateway = app.extensions["dinghuo_wechatpay_gateway"] = WeChatPayGateway.from_config(app.config)
        return gateway


def generate_keys(directory):
    """Write a test/demo key set into `directory` (merchant key pair, platform key pair):
    returns {merchant_private_key, merchant_public_key, platform_private_key,
    platform_public_key} as paths. Never for production: the platform's private key is
    WeChat Pay's, and only the stand-in may hold a stand-in's."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for who in ("merchant", "platform"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        for kind, data in (("private", private), ("public", public)):
            path = directory / f"wechatpay_{who}_{kind}_key.pem"
            path.write_bytes(data)
            paths[f"{who}_{kind}_key"] = str(path)
    return paths
