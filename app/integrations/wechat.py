"""WeChat mini-program and WeCom server APIs: the project's one gateway to Tencent.

This is the only module in the project that imports wechatpy. Everything else
talks to `MiniProgramGateway` / `WeComGateway` and catches `WeChatError`:

    WeChatError          base; `permanent` is True: the request itself is wrong
                         (43101 user refused / no quota, 47003 bad template data,
                         40037 bad template_id, 40003 bad openid/userid, 81013 all
                         recipients invalid, HTTP 4xx...). Do not retry.
    WeChatUnavailable    network error, timeout, HTTP 5xx, errcode -1: back off, retry.
    WeChatRateLimited    45009 (also 45011, 45033; robot over its 20/min limit):
                         wait at least `RATE_LIMIT_WAIT_SECONDS` before retrying.

Expired or invalid access tokens (40001/40014/42001/42007) never reach callers
on the first occurrence: the gateway drops the cached token, fetches a new one
and repeats the call once; a second token error is raised as a WeChatError.

Every URL is built from the configured bases (WECHAT_API_BASE, WECOM_API_BASE),
never from wechatpy's hard-coded official hosts, so tests and the demo can point
the gateways at the local stand-in (`devtools.standin`). Every HTTP call
has a timeout (wechatpy's default is none).

Access tokens live in Redis when REDIS_URL is set (shared by web and worker
processes; one process refreshes under a Redis lock while the others wait and
then read the new token), in the gateway object otherwise.
"""
import logging
import threading
import time

import redis
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.work import WeChatClient as WeComClient

from app.kernel.errors import DeliveryError

log = logging.getLogger(__name__)

# WeChat's and WeCom's "system busy, try again later" code.
ERRCODE_SYSTEM_BUSY = -1
# The call's access token is invalid (40001/40014), expired (42001) or revoked (42007).
TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 42007})
# "api freq out of limit" (both platforms, robots included), "api minute-quota
# reach limit" (WeChat) and "too many concurrent calls" (WeCom).
RATE_LIMIT_ERRCODES = frozenset({45009, 45011, 45033})
# WeCom: every recipient (user, party, tag) of a message is invalid.
ERRCODE_ALL_RECIPIENTS_INVALID = 81013
# Callers wait at least this long after a WeChatRateLimited.
RATE_LIMIT_WAIT_SECONDS = 60

# Group robot content limits, in UTF-8 bytes (WeCom's group robot document).
ROBOT_CONTENT_MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}

# The documented subscribeMessage.send body, minus touser.
SUBSCRIBE_BODY_KEYS = ("template_id", "page", "data", "miniprogram_state", "lang")

REDIS_PREFIX = "dinghuo:wechat"

_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class WeChatError(DeliveryError):
    """WeChat or WeCom refused the request, or could not be asked.

    `errcode` is the platform's numeric errcode (None when the failure happened
    before one was produced, e.g. an HTTP error or a refusal by this gateway);
    `errmsg` is the platform's message or our own description. `permanent` says
    whether retrying the same request can ever help.
    """

    permanent = True


class WeChatUnavailable(WeChatError):
    """Transient failure: network error, timeout, HTTP 5xx or errcode -1.

    Callers back off and retry later; the request itself was not wrong.
    """

    permanent = False


class WeChatRateLimited(WeChatError):
    """The platform's frequency limit was hit (45009 and friends).

    Callers wait at least `RATE_LIMIT_WAIT_SECONDS` before trying again.
    """

    permanent = False
    rate_limited = True


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
        return WeChatUnavailable(None, f"access_token 缓存（Redis）不可用：{exc.__class__.__name__}")
    raise TypeError(f"not a WeChat/HTTP/Redis failure: {exc!r}")


def _checked_dict(result):
    if not isinstance(result, dict):
        # wechatpy hands back the raw Response when the body is not JSON.
        raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
    return result


# --- access tokens -------------------------------------------------------------

_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def _cache_seconds(expires_in):
    """Keep a token until a minute before WeChat says it expires."""
    expires_in = int(expires_in)
    if expires_in > 120:
        return expires_in - 60
    return max(1, expires_in // 2)


class _TokenCache:
    """One access token, shared through Redis (all processes) or memory (this object).

    `fetch()` returns (token, expires_in) and raises WeChatError. In Redis mode,
    a refresh happens under a Redis lock: one process fetches, the others wait
    for the lock and then read what it stored. In memory mode a thread lock does
    the same for the threads sharing this object.
    """

    def __init__(self, name, fetch, redis_url=None, http_timeout=5):
        self.key = f"{REDIS_PREFIX}:{name}:access_token"
        self.lock_key = f"{self.key}:lock"
        self._fetch = fetch
        # The lock expires by itself if its holder dies mid-fetch; waiters give
        # up a little after that.
        self._lock_ttl = 2 * float(http_timeout) + 5
        self._lock_wait = self._lock_ttl + 5
        self._thread_lock = threading.Lock()
        self._memory = None  # (token, expires_at by time.monotonic())
        self._redis = None
        if redis_url:
            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=float(http_timeout) + 1, socket_connect_timeout=float(http_timeout)
            )
            self._compare_and_delete = self._redis.register_script(_COMPARE_AND_DELETE)

    def get(self):
        """The cached token, or a freshly fetched one (at most one fetch at a time)."""
        token = self._read()
        if token:
            return token
        with self._locked():
            token = self._read()  # someone else may have refreshed while we waited
            if token:
                return token
            token, expires_in = self._fetch()
            self._write(token, _cache_seconds(expires_in))
            return token

    def invalidate(self, token=None):
        """Forget `token` (only if it is still the cached one), or whatever is cached."""
        if self._redis is None:
            with self._thread_lock:
                if token is None or (self._memory and self._memory[0] == token):
                    self._memory = None
            return
        try:
            if token is None:
                self._redis.delete(self.key)
            else:
                self._compare_and_delete(keys=[self.key], args=[token])
        except redis.RedisError as exc:
            raise _translate(exc) from exc

    def _read(self):
        if self._redis is None:
            memory = self._memory
            if memory and memory[1] > time.monotonic():
                return memory[0]
            return None
        try:
            value = self._redis.get(self.key)
        except redis.RedisError as exc:
            raise _translate(exc) from exc
        return value.decode() if value else None

    def _write(self, token, seconds):
        if self._redis is None:
            self._memory = (token, time.monotonic() + seconds)
            return
        try:
            self._redis.set(self.key, token, ex=seconds)
        except redis.RedisError as exc:
            raise _translate(exc) from exc

    def _locked(self):
        if self._redis is None:
            return self._thread_lock
        return _RedisLock(self._redis.lock(self.lock_key, timeout=self._lock_ttl, blocking_timeout=self._lock_wait))


class _RedisLock:
    """Context manager around a redis-py Lock that speaks WeChatError."""

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        try:
            acquired = self._lock.acquire()
        except redis.RedisError as exc:
            raise _translate(exc) from exc
        if not acquired:
            raise WeChatUnavailable(None, "等待其他进程刷新 access_token 超时")
        return self

    def __exit__(self, *exc_info):
        try:
            self._lock.release()
        except redis.RedisError:  # expired while we fetched (LockError), or Redis went away
            log.warning("access token lock %s expired before release", self._lock.name)
        return False


# --- wechatpy clients bound to configurable bases ---------------------------------

class _GatewayClientMixin:
    """What both wechatpy clients need: our token cache, our URLs, translated errors."""

    def _setup(self, api_base, tokens_name, redis_url, timeout):
        self.api_base = api_base
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.tokens = _TokenCache(tokens_name, self._fetch_token, redis_url=redis_url, http_timeout=timeout)

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


class _MiniProgramClient(_GatewayClientMixin, WeChatClient):
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


class _WeComClient(_GatewayClientMixin, WeComClient):
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


# --- gateways ------------------------------------------------------------------------

class MiniProgramGateway:
    """The mini-program's server-side calls to WeChat.

    All methods raise `WeChatError` (permanent), `WeChatUnavailable` (retry
    later) or `WeChatRateLimited` (wait a minute). Every HTTP call has `timeout`.
    """

    def __init__(self, app_id, secret, api_base, timeout, redis_url=None):
        self.app_id = app_id
        self._client = _MiniProgramClient(app_id, secret, api_base.rstrip("/"), timeout or 5, redis_url=redis_url)

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
        request (this API authenticates with appid+secret, not a token).
        """
        client = self._client
        result = client.request_json(
            "get",
            "/sns/jscode2session",
            params={
                "appid": client.appid,
                "secret": client.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
                "access_token": None,
            },
        )
        if not result.get("openid"):
            raise WeChatUnavailable(None, "微信接口返回了无法识别的内容")
        return result

    def send_subscribe_message(self, openid, payload):
        """subscribeMessage.send: POST /cgi-bin/message/subscribe/send.

        `payload` is the outbox's mp_subscribe payload: {template_id, page, data,
        miniprogram_state, lang} (page/miniprogram_state/lang optional). The body
        sent is exactly the documented one, with `touser` = openid. Returns
        WeChat's dict (errcode 0). Raises WeChatError 43101 when the user has no
        subscription left, 47003 for data WeChat refuses, 40037, 40003...
        """
        if not openid:
            raise WeChatError(40003, "touser（openid）为空")
        body = {"touser": openid}
        for key in SUBSCRIBE_BODY_KEYS:
            if payload.get(key) is not None:
                body[key] = payload[key]
        return self._client.call_with_token("post", "/cgi-bin/message/subscribe/send", data=body)

    def access_token(self):
        """A valid access token, from the shared cache or freshly fetched.

        Fetched from {api_base}/cgi-bin/stable_token; cached until a minute
        before it expires.
        """
        return self._client.tokens.get()

    def invalidate_access_token(self, token=None):
        """Forget the cached token (only if it is still `token`, when given)."""
        self._client.tokens.invalidate(token)


class WeComGateway:
    """One WeCom self-built app's calls: app messages, template cards, group robots.

    Methods raise `WeChatError` (permanent), `WeChatUnavailable` (retry later)
    or `WeChatRateLimited` (wait a minute). Every HTTP call has `timeout`.
    """

    def __init__(self, corp_id, agent_id, secret, api_base, timeout, redis_url=None, tokens_name=None):
        self.corp_id = corp_id
        self.agent_id = int(agent_id)
        self.api_base = api_base.rstrip("/")
        self._client = _WeComClient(corp_id, secret, self.agent_id, self.api_base, timeout or 5, redis_url=redis_url,
                                    tokens_name=tokens_name)

    @classmethod
    def from_config(cls, config):
        """Build from a Flask config mapping (WECOM_* keys, WECHAT_HTTP_TIMEOUT, REDIS_URL)."""
        return cls(
            corp_id=config["WECOM_CORP_ID"],
            agent_id=config["WECOM_AGENT_ID"],
            secret=config["WECOM_SECRET"],
            api_base=config["WECOM_API_BASE"],
            timeout=config["WECHAT_HTTP_TIMEOUT"],
            redis_url=config.get("REDIS_URL"),
        )

    def send_app_message(self, userid, payload):
        """POST /cgi-bin/message/send to one member, adding `touser` and `agentid`.

        `payload` is the documented body without those two (msgtype text,
        markdown or template_card, enable_duplicate_check...). Returns WeCom's
        dict: `msgid`, and `response_code` for interactive template cards.
        A recipient WeCom reports in `invaliduser` raises WeChatError 81013
        (permanent), as WeCom itself does when every recipient is invalid.
        """
        if not userid:
            raise WeChatError(40003, "touser（企业微信 userid）为空")
        body = {**payload, "touser": userid, "agentid": self.agent_id}
        result = self._client.call_with_token("post", "/cgi-bin/message/send", data=body)
        _raise_if_recipient_invalid(userid, result)
        return result

    def update_template_card(self, userid, payload):
        """POST /cgi-bin/message/update_template_card for one member's card.

        `payload` is the documented body without `userids`/`agentid`, e.g.
        {"response_code": ..., "button": {"replace_name": "已通过"}}.
        """
        if not userid:
            raise WeChatError(40003, "userids（企业微信 userid）为空")
        body = {**payload, "userids": [userid], "agentid": self.agent_id}
        result = self._client.call_with_token("post", "/cgi-bin/message/update_template_card", data=body)
        _raise_if_recipient_invalid(userid, result)
        return result

    def send_robot_message(self, key, payload):
        """POST {WECOM_API_BASE}/cgi-bin/webhook/send?key=<key> (group robot; no token).

        Content longer than the robot allows (markdown 4096, text 2048 UTF-8
        bytes) is refused here with a permanent WeChatError before any request.
        A robot over its 20 messages a minute answers 45009: WeChatRateLimited.
        """
        if not key:
            raise WeChatError(None, "群机器人 webhook key 为空")
        msgtype = payload.get("msgtype")
        limit = ROBOT_CONTENT_MAX_BYTES.get(msgtype)
        if limit is not None:
            content = (payload.get(msgtype) or {}).get("content") or ""
            size = len(content.encode("utf-8"))
            if size > limit:
                raise WeChatError(None, f"群机器人 {msgtype} 内容为 {size} 字节，超过 {limit} 字节上限")
        return self._client.request_json(
            "post", "/cgi-bin/webhook/send", params={"key": key, "access_token": None}, data=dict(payload)
        )

    def access_token(self):
        """A valid WeCom access token, from the shared cache or freshly fetched."""
        return self._client.tokens.get()

    def invalidate_access_token(self, token=None):
        """Forget the cached token (only if it is still `token`, when given)."""
        self._client.tokens.invalidate(token)


class WeComContactGateway(WeComGateway):
    """WeCom customer contact (客户联系): customer groups and enterprise group messages (企业群发).

    These APIs take the token of a self-built app listed under 客户联系 → API → 可调用应用
    (or, for older corps, the 客户联系 secret): WECOM_CONTACT_SECRET when set, else the app's
    WECOM_SECRET. Errors as `WeComGateway`; answers are WeCom's documented dicts.
    """

    @classmethod
    def from_config(cls, config):
        secret = config.get("WECOM_CONTACT_SECRET")
        return cls(
            corp_id=config["WECOM_CORP_ID"],
            agent_id=config["WECOM_AGENT_ID"],
            secret=secret or config["WECOM_SECRET"],
            api_base=config["WECOM_API_BASE"],
            timeout=config["WECHAT_HTTP_TIMEOUT"],
            redis_url=config.get("REDIS_URL"),
            tokens_name=f"wecom:{config['WECOM_CORP_ID']}:contact" if secret else None,
        )

    def _post(self, path, body):
        return self._client.call_with_token("post", path, data=body)

    def list_group_chats(self, owner_userids, *, status_filter=0, limit=1000):
        """Every customer group owned by `owner_userids` (≤ 100 a call, as documented), following
        `next_cursor`: [{"chat_id", "status"}] (status 0 normal, 1-3 owner resigned/being handed over)."""
        chats = []
        owners = list(owner_userids)
        for start in range(0, len(owners), 100):
            cursor = None
            while True:
                body = {"status_filter": status_filter, "owner_filter": {"userid_list": owners[start:start + 100]},
                        "limit": limit}
                if cursor:
                    body["cursor"] = cursor
                result = self._post("/cgi-bin/externalcontact/groupchat/list", body)
                chats.extend(result.get("group_chat_list") or [])
                cursor = result.get("next_cursor")
                if not cursor:
                    break
        return chats

    def get_group_chat(self, chat_id, need_name=0):
        """groupchat/get: the `group_chat` dict (name, owner, create_time, member_list, admin_list...)."""
        return self._post("/cgi-bin/externalcontact/groupchat/get",
                          {"chat_id": chat_id, "need_name": need_name}).get("group_chat") or {}

    def add_msg_template(self, body):
        """add_msg_template: creates a task the sender confirms in the WeCom client.
        Returns WeCom's dict: `msgid` and `fail_list`."""
        return self._post("/cgi-bin/externalcontact/add_msg_template", body)

    def get_groupmsg_task(self, msgid):
        """get_groupmsg_task, every page: [{"userid", "status" (0 未发送, 1 已确认, 2 已发送), "send_time"}]."""
        return self._pages("/cgi-bin/externalcontact/get_groupmsg_task", {"msgid": msgid}, "task_list")

    def get_groupmsg_send_result(self, msgid, userid):
        """get_groupmsg_send_result for one sender, every page: [{"chat_id", "userid", "status", "send_time"}]
        (status 0 未发送, 1 已发送, 2 客户不是好友, 3 客户已收到其他群发消息)."""
        return self._pages("/cgi-bin/externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": userid},
                           "send_list")

    def list_group_messages(self, start_time, end_time, *, filter_type=0):
        """get_groupmsg_list_v2 for group messages (chat_type "group") created in [start_time,
        end_time] (unix seconds, at most a month apart), every page: [{"msgid", "create_time",
        "create_type", "text", "attachments"}]. filter_type 0: created by the corp (API/admin)."""
        return self._pages("/cgi-bin/externalcontact/get_groupmsg_list_v2", {
            "chat_type": "group", "start_time": int(start_time), "end_time": int(end_time),
            "filter_type": filter_type}, "group_msg_list", limit=100)

    def _pages(self, path, body, key, limit=1000):
        items, cursor = [], None
        while True:
            page = {**body, "limit": limit}
            if cursor:
                page["cursor"] = cursor
            result = self._post(path, page)
            items.extend(result.get(key) or [])
            cursor = result.get("next_cursor")
            if not cursor:
                return items

    def cancel_groupmsg_send(self, msgid):
        """cancel_groupmsg_send: stops a task members have not sent yet (it cannot recall what was sent)."""
        return self._post("/cgi-bin/externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    def remind_groupmsg_send(self, msgid):
        """remind_groupmsg_send: WeCom re-notifies the members (at most 3 times in 24 h per task)."""
        return self._post("/cgi-bin/externalcontact/remind_groupmsg_send", {"msgid": msgid})

    def upload_media(self, data, filename, content_type, media_type="image"):
        """media/upload (temporary material, valid 3 days): returns `media_id`."""
        result = self._client.upload_with_token(
            "/cgi-bin/media/upload", {"type": media_type}, {"media": (filename, data, content_type)})
        if not result.get("media_id"):
            raise WeChatUnavailable(None, "企业微信接口返回了无法识别的内容")
        return result["media_id"]


def _raise_if_recipient_invalid(userid, result):
    # WeCom lower-cases the ids it reports; message/send uses "a|b", the card update a list.
    invalid = result.get("invaliduser") or ""
    if isinstance(invalid, str):
        invalid = invalid.split("|")
    if userid.lower() in {str(u).lower() for u in invalid if u}:
        raise WeChatError(
            ERRCODE_ALL_RECIPIENTS_INVALID,
            f"user & party & tag all invalid：接收人 {userid} 无效（不存在或不在应用可见范围内）",
        )


def mini_program_gateway(app):
    """The app's MiniProgramGateway, built once per app so its token cache is reused."""
    return _cached_gateway(app, "mp", MiniProgramGateway)


def wecom_gateway(app):
    """The app's WeComGateway, built once per app so its token cache is reused."""
    return _cached_gateway(app, "wecom", WeComGateway)


def wecom_contact_gateway(app):
    """The app's WeComContactGateway (customer groups, group messages), built once per app."""
    return _cached_gateway(app, "wecom_contact", WeComContactGateway)


_gateway_lock = threading.Lock()


def _cached_gateway(app, name, cls):
    gateways = app.extensions.setdefault("dinghuo_wechat_gateways", {})
    with _gateway_lock:
        if name not in gateways:
            gateways[name] = cls.from_config(app.config)
        return gateways[name]


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
