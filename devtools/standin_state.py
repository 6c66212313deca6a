"""What the stand-in remembers (`StandinState`) and what its routes share: the errcodes and
how to answer with them, the paths it records and takes scripted faults for, the request body.
Part of `devtools.standin`."""
import json
import secrets
import threading
from collections import deque

from flask import jsonify, request

from app.kernel import clock

CODE_TTL_SECONDS = 5 * 60
TOKEN_TTL_SECONDS = 7200
RESPONSE_CODE_TTL_SECONDS = 72 * 3600
WECOM_MEMBER_LIMIT_PER_MINUTE = 30
ROBOT_LIMIT_PER_MINUTE = 20

# errcode -> errmsg, as WeChat/WeCom spell them.
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40037: "invalid template_id",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    44004: "empty content",
    45009: "api freq out of limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}

WECHAT_PATHS = ("/sns/jscode2session", "/cgi-bin/stable_token", "/cgi-bin/token", "/cgi-bin/message/subscribe/send")
WECOM_PATHS = (
    "/cgi-bin/gettoken", "/cgi-bin/message/send", "/cgi-bin/message/update_template_card", "/cgi-bin/webhook/send",
)
# Only the prepay and refund routes of WeChat Pay take scripted faults (the others carry the
# order or refund number).
# WeCom customer contact (customer groups, group messages) and temporary media: devtools.standin_contact.
CONTACT_PATHS = tuple(f"/cgi-bin/externalcontact/{name}" for name in (
    "groupchat/list", "groupchat/get", "add_msg_template", "get_groupmsg_list_v2", "get_groupmsg_task",
    "get_groupmsg_send_result",
    "cancel_groupmsg_send", "remind_groupmsg_send")) + ("/cgi-bin/media/upload",)
STANDIN_PATHS = WECHAT_PATHS + WECOM_PATHS + CONTACT_PATHS + ("/v3/pay/transactions/jsapi", "/v3/refund/domestic/refunds")


def _error(errcode, errmsg=None, **extra):
    return jsonify({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error"), **extra})


def _ok(**extra):
    return jsonify({"errcode": 0, "errmsg": "ok", **extra})


def _random_openid():
    # Real openids are 28 characters starting with "o".
    return "o" + secrets.token_urlsafe(21)[:27]


def json_body():
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def _canonical(body):
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _summary(channel, body):
    """One line in Chinese describing a delivered message, for the index page."""
    if channel == "mp_subscribe":
        values = "，".join(
            f"{key}：{entry.get('value')}" for key, entry in (body.get("data") or {}).items() if isinstance(entry, dict)
        )
        return f"模板 {body.get('template_id')}｜{values}｜点击打开 {body.get('page') or '（无跳转）'}"
    if channel == "wecom_groupmsg":
        text = (body.get("text") or {}).get("content") or ""
        return f"待业务员在群发助手确认：发到 {len(body.get('chat_id_list') or [])} 个客户群｜{text}"
    if channel == "wecom_card":
        button = (body.get("button") or {}).get("replace_name")
        return f"按钮更新为「{button}」" if button else "卡片内容已更新"
    msgtype = body.get("msgtype")
    if msgtype in ("text", "markdown", "markdown_v2"):
        return (body.get(msgtype) or {}).get("content") or ""
    if msgtype == "template_card":
        card = body.get("template_card") or {}
        title = (card.get("main_title") or {}).get("title") or ""
        buttons = "、".join(b.get("text", "") for b in card.get("button_list") or [])
        return f"卡片「{title}」" + (f"（按钮：{buttons}）" if buttons else "")
    return f"{msgtype} 消息"


class StandinState:
    """Everything the stand-in remembers; all access goes through the lock."""

    def __init__(self, app_id, secret, corp_id, corp_secret, agent_id, robot_keys,
                 member_limit=WECOM_MEMBER_LIMIT_PER_MINUTE, robot_limit=ROBOT_LIMIT_PER_MINUTE):
        self.member_limit = member_limit
        self.robot_limit = robot_limit
        self.app_id = app_id
        self.secret = secret
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = int(agent_id)
        self.robot_keys = set(robot_keys)
        # Where to push simulated rep actions: {"url", "token", "aes_key"} (see connect_callback).
        self.callback = None
        self._lock = threading.Lock()
        # Issued access tokens outlive reset(), as real ones outlive a test: a
        # gateway holding one keeps working. expire_tokens() ends them.
        self._mp_tokens = {}  # token -> expires_at (stable and classic tokens)
        self._stable = None  # the current stable token
        self._wecom_tokens = {}  # token -> expires_at
        self._wecom_current = None
        self.reset()

    def reset(self):
        with self._lock:
            self._codes = {}  # js_code -> {"openid", "expires_at", "used"}
            self._faults = {}  # path -> list of fault dicts, applied in order
            self._requests = []
            self._delivered = []
            self._dropped = []
            self._invalid = set()  # openids / userids the platforms do not know
            # One-time subscriptions: (openid, template_id) -> messages still allowed. Only
            # enforced after require_subscriptions(), so tests that do not care need no setup.
            self._subscriptions = {}
            self._subscriptions_required = False
            self._duplicates = {}  # canonical body -> (sent_at, result), for WeCom's duplicate check
            self._member_sends = {}  # userid -> deque of delivery times (last minute)
            self._response_codes = {}  # response_code -> {"expires_at", "used"}
            self._task_ids = set()
            self._robot_sends = {}  # key -> deque of send times
            self._msgid = 0

    # --- login codes -------------------------------------------------------

    def mint_code(self, openid=None):
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "openid": openid or _random_openid(),
                "expires_at": clock.timestamp() + CODE_TTL_SECONDS,
                "used": False,
            }
        return code

    def redeem_code(self, code):
        """Return (openid, None) or (None, errcode); marks the code used."""
        with self._lock:
            entry = self._codes.get(code)
            if entry is None or entry["expires_at"] < clock.timestamp():
                return None, 40029
            if entry["used"]:
                return None, 40163
            entry["used"] = True
            return entry["openid"], None

    # --- access tokens -----------------------------------------------------

    def stable_token(self, force_refresh=False):
        """Same token while valid (like WeChat), a new one when forced or expired."""
        with self._lock:
            now = clock.timestamp()
            current = self._stable
            if force_refresh or current is None or self._mp_tokens.get(current, 0) <= now:
                if current and force_refresh:
                    self._mp_tokens.pop(current, None)  # a forced refresh ends the old token
                current = self._stable = secrets.token_urlsafe(48)
                self._mp_tokens[current] = now + TOKEN_TTL_SECONDS
            return current, max(0, int(self._mp_tokens[current] - now))

    def classic_token(self):
        with self._lock:
            token = secrets.token_urlsafe(48)
            self._mp_tokens[token] = clock.timestamp() + TOKEN_TTL_SECONDS
            return token, TOKEN_TTL_SECONDS

    def wecom_token(self):
        """WeCom hands out the same token while it is valid."""
        with self._lock:
            now = clock.timestamp()
            current = self._wecom_current
            if current is None or self._wecom_tokens.get(current, 0) <= now:
                current = self._wecom_current = secrets.token_urlsafe(48)
                self._wecom_tokens[current] = now + TOKEN_TTL_SECONDS
            return current, max(0, int(self._wecom_tokens[current] - now))

    def check_token(self, token, platform):
        """None when `token` is valid now, else the errcode the platform answers."""
        tokens = self._mp_tokens if platform == "mp" else self._wecom_tokens
        with self._lock:
            if not token:
                return 41001
            expires_at = tokens.get(token)
            if expires_at is None:
                return 40001 if platform == "mp" else 40014
            if expires_at <= clock.timestamp():
                return 42001
            return None

    def expire_tokens(self):
        """Every issued token expires now (calls answer 42001); the next fetch gets a new one."""
        with self._lock:
            now = clock.timestamp()
            for tokens in (self._mp_tokens, self._wecom_tokens):
                for token in tokens:
                    tokens[token] = now

    # --- recipients and deliveries -------------------------------------------

    def mark_invalid(self, recipient):
        with self._lock:
            self._invalid.add(recipient.lower())

    def require_subscriptions(self, required=True):
        with self._lock:
            self._subscriptions_required = required

    def grant_subscription(self, openid, template_ids):
        """What tapping 允许 in wx.requestSubscribeMessage does: one more message per template."""
        with self._lock:
            for template_id in template_ids:
                key = (openid, template_id)
                self._subscriptions[key] = self._subscriptions.get(key, 0) + 1

    def use_subscription(self, openid, template_id):
        """False when subscriptions are enforced and the user has none left for the template."""
        with self._lock:
            if not self._subscriptions_required:
                return True
            key = (openid, template_id)
            if self._subscriptions.get(key, 0) <= 0:
                return False
            self._subscriptions[key] -= 1
            return True

    def is_invalid(self, recipient):
        with self._lock:
            return recipient.lower() in self._invalid

    def next_msgid(self):
        with self._lock:
            self._msgid += 1
            return self._msgid

    def deliver(self, channel, to, body, **extra):
        entry = {"channel": channel, "to": to, "body": body, "at": clock.timestamp(), **extra}
        entry["summary"] = _summary(channel, body)
        with self._lock:
            self._delivered.append(entry)
        return entry

    def deliver_app_message(self, users, body, result):
        """Deliver to each user, dropping what exceeds WeCom's 30 a minute per member."""
        now = clock.timestamp()
        summary = _summary("wecom_app", body)
        with self._lock:
            for user in users:
                sends = self._member_sends.setdefault(user, deque())
                while sends and sends[0] <= now - 60:
                    sends.popleft()
                entry = {
                    "channel": "wecom_app", "to": user, "body": body, "at": now,
                    "msgid": result["msgid"], "summary": summary,
                }
                if self.member_limit is not None and len(sends) >= self.member_limit:
                    self._dropped.append(entry)
                else:
                    sends.append(now)
                    self._delivered.append(entry)

    def find_duplicate(self, body, interval):
        """The earlier result of an identical message sent within `interval` seconds, if any."""
        with self._lock:
            earlier = self._duplicates.get(_canonical(body))
        if earlier and earlier[0] > clock.timestamp() - interval:
            return earlier[1]
        return None

    def remember_sent(self, body, result):
        with self._lock:
            self._duplicates[_canonical(body)] = (clock.timestamp(), result)

    def claim_task_id(self, task_id):
        with self._lock:
            if task_id in self._task_ids:
                return False
            self._task_ids.add(task_id)
            return True

    def issue_response_code(self):
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._response_codes[code] = {"expires_at": clock.timestamp() + RESPONSE_CODE_TTL_SECONDS, "used": False}
        return code

    def use_response_code(self, code):
        """True once per issued, unexpired response_code (WeCom: usable once)."""
        with self._lock:
            entry = self._response_codes.get(code)
            if entry is None or entry["used"] or entry["expires_at"] <= clock.timestamp():
                return False
            entry["used"] = True
            return True

    def robot_allowed(self, key):
        """Count one robot send; False when the robot already sent 20 in the last minute."""
        now = clock.timestamp()
        with self._lock:
            sends = self._robot_sends.setdefault(key, deque())
            while sends and sends[0] <= now - 60:
                sends.popleft()
            if self.robot_limit is not None and len(sends) >= self.robot_limit:
                return False
            sends.append(now)
            return True

    @property
    def delivered(self):
        with self._lock:
            return [dict(d) for d in self._delivered]

    @property
    def dropped(self):
        with self._lock:
            return [dict(d) for d in self._dropped]

    # --- faults and recording ----------------------------------------------

    def add_fault(self, path, errcode=None, http_status=None, times=1, delay_seconds=None):
        fault = {
            "errcode": errcode,
            "http_status": http_status,
            "delay_seconds": delay_seconds,
            "times": max(1, int(times or 1)),
        }
        with self._lock:
            self._faults.setdefault(path, []).append(fault)
        return fault

    def take_fault(self, path):
        """Consume one use of the first fault scripted for path, if any."""
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault["times"] -= 1
            if fault["times"] <= 0:
                queue.pop(0)
            return dict(fault)

    def record(self, entry):
        with self._lock:
            self._requests.append(entry)

    @property
    def requests(self):
        with self._lock:
            return [dict(r) for r in self._requests]
