"""WeChat mini-program server API (code2Session, access token).

This is the only module in the project that imports wechatpy. Everything else
talks to `MiniProgramGateway` and catches `WeChatError` / `WeChatUnavailable`.

Every URL is built from the configured `api_base` (WECHAT_API_BASE), never from
wechatpy's hard-coded official host, so tests and the demo can point the
gateway at the local stand-in (`app.integrations.standin`).
"""
import time

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

# WeChat's "system busy, try again later" code.
ERRCODE_SYSTEM_BUSY = -1

REDIS_PREFIX = "dinghuo:wechat"


class WeChatError(Exception):
    """WeChat answered with an error, or could not be asked.

    `errcode` is WeChat's numeric errcode (None when the failure happened
    before WeChat produced one, e.g. an HTTP error); `errmsg` is WeChat's
    message or our own description.
    """

    def __init__(self, errcode, errmsg):
        super().__init__(f"errcode={errcode} errmsg={errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(WeChatError):
    """Transient failure: network error, timeout, HTTP 5xx or errcode -1.

    Callers may retry later; the request itself was not wrong.
    """


class _MiniProgramClient(WeChatClient):
    """wechatpy client bound to a configurable API base.

    wechatpy's own API helpers (e.g. `client.wxa.*`) carry the official host
    in class attributes, so callers must go through `url()` with full URLs.
    """

    def __init__(self, appid, secret, api_base, session, timeout):
        # auto_retry=False: wechatpy's retry re-fetches the token from the
        # official host and hides failures; retry policy belongs to callers.
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.api_base = api_base
        self.API_BASE_URL = f"{api_base}/cgi-bin/"

    def url(self, path):
        return f"{self.api_base}{path}"

    def fetch_access_token(self):
        """Fetch a token via getStableAccessToken and store it in the session.

        Overridden because wechatpy hard-codes https://api.weixin.qq.com/cgi-bin/token.
        The stable token endpoint returns the same token while it is valid, so
        web processes and workers fetching concurrently do not invalidate each
        other's tokens (the old /cgi-bin/token endpoint does).
        """
        result = self._request(
            "post",
            self.url("/cgi-bin/stable_token"),
            # "access_token": None keeps _request from asking for a token
            # (which would recurse into this method); requests drops None params.
            params={"access_token": None},
            data={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": False,
            },
            headers={"Content-Type": "application/json"},
        )
        if not isinstance(result, dict) or "access_token" not in result:
            raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in
        return result


def _translate(exc):
    """Map wechatpy/requests exceptions to WeChatError / WeChatUnavailable."""
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            # wechatpy raises errcode=None when raise_for_status() failed.
            status = getattr(exc.response, "status_code", None)
            if status is None or status >= 500:
                return WeChatUnavailable(None, f"微信接口暂时不可用（HTTP {status}）")
            return WeChatError(None, f"微信接口拒绝了请求（HTTP {status}）")
        if exc.errcode == ERRCODE_SYSTEM_BUSY:
            return WeChatUnavailable(exc.errcode, exc.errmsg)
        return WeChatError(exc.errcode, exc.errmsg)
    if isinstance(exc, requests.Timeout):
        return WeChatUnavailable(None, "微信接口超时")
    return WeChatUnavailable(None, f"无法连接微信接口：{exc.__class__.__name__}")


class MiniProgramGateway:
    """The mini-program's server-side calls to WeChat.

    All methods raise `WeChatError` (WeChat refused: bad code, bad secret...)
    or `WeChatUnavailable` (try again later). Every HTTP call has `timeout`.
    """

    def __init__(self, app_id, secret, api_base, timeout, redis_url=None):
        if redis_url:
            import redis  # only needed when Redis is configured

            # Redis shares the token between web processes and workers.
            storage = RedisStorage(redis.Redis.from_url(redis_url), prefix=REDIS_PREFIX)
        else:
            storage = MemoryStorage()
        self.app_id = app_id
        self._client = _MiniProgramClient(
            app_id, secret, api_base.rstrip("/"), storage, timeout or 5
        )

    @classmethod
    def from_config(cls, config):
        """Build from a Flask config mapping (WECHAT_* keys and REDIS_URL)."""
        return cls(
            app_id=config["WECHAT_APP_ID"],
            secret=config["WECHAT_APP_SECRET"],
            api_base=config["WECHAT_API_BASE"],
            timeout=config["WECHAT_HTTP_TIMEOUT"],
            redis_url=config.get("REDIS_URL"),
        )

    def code_to_session(self, js_code):
        """Exchange a wx.login() code for the user's identity (auth.code2Session).

        Returns WeChat's dict: `openid`, `session_key` and, when the mini-program
        is bound to an open-platform account, `unionid`. Makes exactly one HTTP
        request (this API needs no access token).
        """
        client = self._client
        try:
            result = client.get(
                client.url("/sns/jscode2session"),
                params={
                    "appid": client.appid,
                    "secret": client.secret,
                    "js_code": js_code,
                    "grant_type": "authorization_code",
                    # code2Session authenticates with appid+secret, not a token.
                    # wechatpy's _request adds access_token (fetching one first!)
                    # unless the key is already present; requests drops params
                    # whose value is None, so nothing extra goes on the wire.
                    "access_token": None,
                },
            )
        except (WeChatClientException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        if not isinstance(result, dict) or not result.get("openid"):
            raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
        return result

    def access_token(self):
        """A valid access token, from the shared cache or freshly fetched.

        Fetched from {api_base}/cgi-bin/stable_token; cached until 60 s before
        it expires (wechatpy's rule).
        """
        try:
            return self._client.access_token
        except (WeChatClientException, requests.RequestException) as exc:
            raise _translate(exc) from exc

    def invalidate_access_token(self):
        """Forget the cached token (call after WeChat answers 40001/42001)."""
        self._client.session.delete(self._client.access_token_key)
        self._client.session.delete(self._client.access_token_expires_at_key)


# =============================================================================
# WeCom callback crypto (used by bots/callback.py)
#
# WeCom signs and encrypts what it pushes to the app's callback URL: msg_signature =
# sha1 of the sorted (Token, timestamp, nonce, Encrypt); Encrypt = base64 of AES-256-CBC
# (key = base64(EncodingAESKey + "="), IV = key[:16], PKCS#7 to 32 bytes) over
# random16 + msg_len (4 bytes, network order) + msg + CorpID. wechatpy's
# `wechatpy.work.crypto.WeChatCrypto` implements it; this section wraps it so callers
# see one exception type. wechatpy names are imported here, not at the top of the module.
# =============================================================================

class WeComCallbackError(Exception):
    """The callback request is not from our WeCom app (bad signature, wrong CorpID, garbage)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class WeComCallbackCrypto:
    """Verify, decrypt (and, for tests and passive replies, encrypt) WeCom callback payloads."""

    def __init__(self, token, encoding_aes_key, corp_id):
        from wechatpy.work.crypto import WeChatCrypto

        if len(encoding_aes_key or "") != 43:
            raise ValueError("WECOM_AES_KEY (EncodingAESKey) must be 43 characters")
        try:
            self._crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        except Exception as exc:  # wechatpy asserts on a key that is not base64 of 32 bytes
            raise ValueError("WECOM_AES_KEY (EncodingAESKey) is not a valid key") from exc
        self.corp_id = corp_id

    @classmethod
    def from_config(cls, config):
        return cls(config["WECOM_TOKEN"], config["WECOM_AES_KEY"], config["WECOM_CORP_ID"])

    def _guard(self, call):
        import binascii
        import struct

        from wechatpy.exceptions import InvalidSignatureException
        from wechatpy.work.exceptions import InvalidCorpIdException

        try:
            return call()
        except InvalidSignatureException:
            raise WeComCallbackError("bad_signature") from None
        except InvalidCorpIdException:
            raise WeComCallbackError("wrong_corp_id") from None
        except (binascii.Error, struct.error, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
            # Right signature but undecryptable content: treat as not ours.
            raise WeComCallbackError(f"undecryptable:{exc.__class__.__name__}") from None

    def verify_url(self, msg_signature, timestamp, nonce, echostr):
        """URL verification (GET): check the signature over echostr and return its plain text."""
        return self._guard(lambda: self._crypto.check_signature(msg_signature, timestamp, nonce, echostr))

    def decrypt_message(self, body, msg_signature, timestamp, nonce):
        """Decrypt a POSTed callback body; returns the inner message as a flat dict of strings.

        Raises WeComCallbackError for a bad signature, another corp's payload or garbage.
        """
        import xmltodict
        from xml.parsers.expat import ExpatError

        def run():
            try:
                outer = xmltodict.parse(body, disable_entities=True)["xml"]
            except (ExpatError, TypeError, KeyError) as exc:
                raise ValueError("malformed outer XML") from exc
            if not isinstance(outer, dict) or not isinstance(outer.get("Encrypt"), str):
                raise ValueError("no Encrypt element")
            plain = self._crypto.decrypt_message({"Encrypt": outer["Encrypt"]}, msg_signature, timestamp, nonce)
            try:
                inner = xmltodict.parse(plain, disable_entities=True)["xml"]
            except (ExpatError, TypeError, KeyError) as exc:
                raise ValueError("malformed inner XML") from exc
            if not isinstance(inner, dict):
                raise ValueError("empty inner XML")
            return inner

        return self._guard(run)

    def encrypt_message(self, xml, nonce, timestamp):
        """Encrypt and sign `xml` as WeCom does; returns the outer XML
        (<Encrypt>, <MsgSignature>, <TimeStamp>, <Nonce>)."""
        return self._crypto.encrypt_message(xml, nonce, str(timestamp))
