"""The gateways the product calls: the mini-program's server API (code2Session, subscribe
messages), one WeCom app's messages, cards and group robots, and WeCom customer contact
(customer groups, group messages); one instance of each per Flask app.

Every method raises `WeChatError` (permanent), `WeChatUnavailable` (retry later) or
`WeChatRateLimited` (wait a minute) from `app.integrations.wechat_errors`; the HTTP calls go
through the wechatpy clients of `app.integrations.wechat`.
"""
import threading

from app.integrations.wechat import MiniProgramApiClient, WeComApiClient
from app.integrations.wechat_errors import ERRCODE_ALL_RECIPIENTS_INVALID, WeChatError, WeChatUnavailable

# Group robot content limits, in UTF-8 bytes (WeCom's group robot document).
ROBOT_CONTENT_MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}

# The documented subscribeMessage.send body, minus touser.
SUBSCRIBE_BODY_KEYS = ("template_id", "page", "data", "miniprogram_state", "lang")


class MiniProgramGateway:
    """The mini-program's server-side calls to WeChat.

    All methods raise `WeChatError` (permanent), `WeChatUnavailable` (retry
    later) or `WeChatRateLimited` (wait a minute). Every HTTP call has `timeout`.
    """

    def __init__(self, app_id, secret, api_base, timeout, redis_url=None):
        self.app_id = app_id
        self._client = MiniProgramApiClient(app_id, secret, api_base.rstrip("/"), timeout or 5, redis_url=redis_url)

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
        self._client = WeComApiClient(corp_id, secret, self.agent_id, self.api_base, timeout or 5, redis_url=redis_url,
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
