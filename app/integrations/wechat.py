"""WeChat mini-program and WeCom server APIs: the project's one binding to wechatpy.

This is the only module in the project that imports wechatpy. It holds the wechatpy
clients bound to the configured bases and the WeCom callback crypto; everything else
talks to the gateways (`app.integrations.wechat_gateways`: `MiniProgramGateway`,
`WeComGateway`, `WeComContactGateway`) and catches `WeChatError`
(`app.integrations.wechat_errors`, which describes the three error classes).

Expired or invalid access tokens (40001/40014/42001/42007) never reach callers
on the first occurrence: the client drops the cached token, fetches a new one
and repeats the call once; a second token error is raised as a WeChatError.

Every URL is built from the configured bases (WECHAT_API_BASE, WECOM_API_BASE),
never from wechatpy's hard-coded official hosts, so tests and the demo can point
the gateways at the local stand-in (`devtools.standin`). Every HTTP call
has a timeout (wechatpy's default is none).

Access tokens live in Redis when REDIS_URL is set, in the client otherwise
(`app.integrations.wechat_tokens`).
"""
import logging

import redis
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.work import WeChatClient as WeComClient

from app.integrations.wechat_errors import (
    ERRCODE_SYSTEM_BUSY,
    RATE_LIMIT_ERRCODES,
    TOKEN_ERRCODES,
    WeChatError,
    WeChatRateLimited,
    WeChatUnavailable,
    cache_unavailable,
)
from app.integrations.wechat_tokens import TokenCache

log = logging.getLogger(__name__)

_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _translate(exc):
    """Map wechatpy/requests/redis exceptions to the gateway's error classes."""
    if isinstance(exc, WeChatError):
        return exc
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            # wechatpy raises errcode=None when raise_for_status() failed.
            status = getattr(exc.response, "status_code", None)
            if status is None or status >= 500:
                return WeChatUnavailable(None, f"微信接口暂时不可用（HTTP {status}）")
            return WeChatError(None, f"微信接口拒绝了请求（HTTP {status}）")
        if exc.errcode == ERRCODE_SYSTEM_BUSY:
            return WeChatUnavailable(exc.errcode, exc.errmsg)
        if exc.errcode in RATE_LIMIT_ERRCODES:
            return WeChatRateLimited(exc.errcode, exc.errmsg)
        return WeChatError(exc.errcode, exc.errmsg)
    if isinstance(exc, requests.Timeout):
        return WeChatUnavailable(None, "微信接口超时")
    if isinstance(exc, requests.RequestException):
        return WeChatUnavailable(None, f"无法连接微信接口：{exc.__class__.__name__}")
    if isinstance(exc, redis.RedisError):
        return cache_unavailable(exc)
    raise TypeError(f"not a WeChat/HTTP/Redis failure: {exc!r}")


def _checked_dict(result):
    if not isinstance(result, dict):
        # wechatpy hands back the raw Response when the body is not JSON.
        raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
    return result


# --- wechatpy clients bound to configurable bases ---------------------------------

class _GatewayClientMixin:
    """What both wechatpy clients need: our token cache, our URLs, translated errors."""

    def _setup(self, api_base, tokens_name, redis_url, timeout):
        self.api_base = api_base
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.tokens = TokenCache(tokens_name, self._fetch_token, redis_url=redis_url, http_timeout=timeout)

    def url(self, path):
        return f"{self.api_base}{path}"

    @property
    def access_token(self):
        # wechatpy's _request reads this when a call carries no token; ours always do.
        return self.tokens.get()

    def fetch_access_token(self):
        # wechatpy's versions hit the official host without a timeout.
        self.tokens.invalidate()
        return {"access_token": self.tokens.get()}

    def request_json(self, method, path, params=None, data=None):
        """One HTTP call; returns WeChat's dict or raises a WeChatError subclass.

        `params` must carry `access_token` (a value, or None for APIs that take
        none: requests drops None-valued params, and wechatpy only fetches a
        token itself when the key is absent).
        """
        try:
            result = self._request(
                method, self.url(path), params=params, data=data,
                headers=_JSON_HEADERS if data is not None else None,
            )
        except (WeChatClientException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        return _checked_dict(result)

    def call_with_token(self, method, path, data=None):
        """Call an API that takes ?access_token=, refreshing the token once if it is rejected."""
        token = self.tokens.get()
        try:
            return self.request_json(method, path, params={"access_token": token}, data=data)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            log.info("%s answered errcode %s; refreshing the access token and retrying once", path, exc.errcode)
            self.tokens.invalidate(token)
        # A second token error goes to the caller as it is.
        return self.request_json(method, path, params={"access_token": self.tokens.get()}, data=data)

    def upload_with_token(self, path, params, files):
        """A multipart upload to an API that takes ?access_token= (media/upload, media/uploadimg),
        refreshing the token once if it is rejected, like `call_with_token`."""
        for attempt in (1, 2):
            token = self.tokens.get()
            try:
                result = self._request("post", self.url(path), params={**params, "access_token": token}, files=files)
            except (WeChatClientException, requests.RequestException) as exc:
                error = _translate(exc)
                if attempt == 1 and error.errcode in TOKEN_ERRCODES:
                    self.tokens.invalidate(token)
                    continue
                raise error from exc
            return _checked_dict(result)


class MiniProgramApiClient(_GatewayClientMixin, WeChatClient):
    """wechatpy's mini-program client bound to WECHAT_API_BASE."""

    def __init__(self, appid, secret, api_base, timeout, redis_url=None):
        # auto_retry=False: wechatpy's own retry on 40001/42001 refetches from the
        # official host and recurses without limit; call_with_token retries once.
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self._setup(api_base, f"mp:{appid}", redis_url, timeout)

    def _fetch_token(self):
        """getStableAccessToken (POST /cgi-bin/stable_token), normal mode.

        The stable token endpoint returns the same token while it is valid, so
        processes fetching concurrently do not invalidate each other's tokens
        (/cgi-bin/token does). force_refresh is never used: it invalidates the
        current token for everyone and is limited to 20 calls a day.
        """
        result = self.request_json(
            "post",
            "/cgi-bin/stable_token",
            params={"access_token": None},
            data={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret, "force_refresh": False},
        )
        if not result.get("access_token"):
            raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
        return result["access_token"], int(result.get("expires_in", 7200))


class WeComApiClient(_GatewayClientMixin, WeComClient):
    """wechatpy's WeCom client bound to WECOM_API_BASE."""

    def __init__(self, corp_id, secret, agent_id, api_base, timeout, redis_url=None, tokens_name=None):
        super().__init__(corp_id, secret, timeout=timeout, auto_retry=False)
        # A WeCom token belongs to one app (corp id + that app's secret).
        self._setup(api_base, tokens_name or f"wecom:{corp_id}:{agent_id}", redis_url, timeout)

    def _fetch_token(self):
        """GET /cgi-bin/gettoken?corpid=&corpsecret= (same token while it is valid)."""
        result = self.request_json(
            "get",
            "/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret, "access_token": None},
        )
        if not result.get("access_token"):
            raise WeChatUnavailable(None, "企业微信接口返回了无法识别的内容")
        return result["access_token"], int(result.get("expires_in", 7200))


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
        from xml.parsers.expat import ExpatError

        import xmltodict

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
