"""A local stand-in for WeChat's and WeCom's servers.

Used by the demo and the tests: real HTTP on 127.0.0.1, speaking the documented
JSON (including error codes), so the gateway code under test is exactly the
code that runs against api.weixin.qq.com / qyapi.weixin.qq.com.

WeChat (mini-program) routes:
    GET  /sns/jscode2session              auth.code2Session
    POST /cgi-bin/stable_token            getStableAccessToken
    GET  /cgi-bin/token                   getAccessToken
    POST /cgi-bin/message/subscribe/send  subscribeMessage.send
WeCom routes:
    GET  /cgi-bin/gettoken                access token for one app (corpid + corpsecret)
    POST /cgi-bin/message/send            app message (text, markdown, template_card...)
    POST /cgi-bin/message/update_template_card
    POST /cgi-bin/webhook/send?key=       group robot
WeChat Pay API v3 routes (JSAPI prepay, query, close; signed requests, signed answers,
encrypted notifications): see `devtools.standin_pay`.

Control routes (not part of WeChat):
    POST /_standin/wx/login    {"openid": optional} -> {"code": ...}; what wx.login() does on a phone
    POST /_standin/wx/subscribe {"openid", "template_ids"}: the user accepted wx.requestSubscribeMessage
                               (counted only after require_subscriptions(); then no quota -> 43101)
    POST /_standin/faults      script failures for a path (errcode / http_status / delay_seconds, times)
    GET  /_standin/requests    recorded WeChat/WeCom-route requests
    GET  /_standin/delivered   messages that reached a (pretend) phone, newest last
    POST /_standin/reset       forget codes, faults, recorded requests and deliveries

Where WeChat documents a rule the stand-in enforces it (token validity, recipients,
template data types and lengths, robot key, content sizes, the robot's 20 messages
a minute, WeCom's duplicate check and its silent drop beyond 30 messages a minute
per member). Where a rule exists but its errcode is not documented, the stand-in
answers 40058 (WeCom) / 47003 (WeChat) "argument invalid" so bad input never
passes silently; those places say so.

This module must not import wechatpy: it plays the other side.
"""
import html
import json
import re
import secrets
import threading
import time
from collections import deque

import requests
from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from devtools.standin_contact import ContactState, register_contact_routes
from devtools.standin_pay import PayState, register_pay_routes
from app.kernel import clock

CODE_TTL_SECONDS = 5 * 60
TOKEN_TTL_SECONDS = 7200
RESPONSE_CODE_TTL_SECONDS = 72 * 3600
WECOM_MEMBER_LIMIT_PER_MINUTE = 30
ROBOT_LIMIT_PER_MINUTE = 20
DEFAULT_DUPLICATE_CHECK_INTERVAL = 1800

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

CHANNEL_LABELS = {
    "mp_subscribe": "小程序订阅消息",
    "wecom_app": "企业微信应用消息",
    "wecom_card": "企业微信卡片更新",
    "wecom_robot": "企业微信群机器人",
    "wecom_groupmsg": "客户群群发任务",
}

MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE_CARD_TYPES = ("button_interaction", "vote_interaction", "multiple_interaction")
TASK_ID_RE = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
ROBOT_CONTENT_MAX_BYTES = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}


def _error(errcode, errmsg=None, **extra):
    return jsonify({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error"), **extra})


def _ok(**extra):
    return jsonify({"errcode": 0, "errmsg": "ok", **extra})


def _random_openid():
    # Real openids are 28 characters starting with "o".
    return "o" + secrets.token_urlsafe(21)[:27]


# --- subscribe message data rules (WeChat's 订阅消息参数值内容限制说明) -----------------

_CJK = r"\u4e00-\u9fff"


def _is_cjk(text):
    return bool(re.fullmatch(f"[{_CJK}]+", text))


def _subscribe_value_ok(kind, value):
    """Whether `value` fits WeChat's rule for a data key of type `kind` (thing, number...)."""
    n = len(value)
    if kind == "thing":  # 20 characters: Chinese, digits, letters or symbols
        return n <= 20
    if kind == "number":  # up to 32 digits, may have decimals
        return n <= 32 and re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
    if kind == "letter":
        return n <= 32 and re.fullmatch(r"[A-Za-z]+", value) is not None
    if kind == "symbol":
        return n <= 5 and re.fullmatch(rf"[^0-9A-Za-z{_CJK}\s]+", value) is not None
    if kind == "character_string":  # up to 32 digits, letters or symbols
        return n <= 32 and re.fullmatch(rf"[^{_CJK}\s]+", value) is not None
    if kind in ("time", "date"):  # 24h time and/or a date; a range joined by "~"
        return re.search(r"\d", value) is not None and n <= 64
    if kind == "amount":  # one currency sign + up to 10 digits, decimals, may end in 元
        return re.fullmatch(r"[¥￥$€£]?\d{1,10}(\.\d{1,2})?元?", value) is not None
    if kind == "phone_number":
        return n <= 17 and re.fullmatch(r"[\d+\-() ]+", value) is not None
    if kind == "car_number":
        return n <= 8
    if kind == "name":  # 10 Chinese characters, or 20 letters/symbols
        return n <= 10 if re.search(f"[{_CJK}]", value) else n <= 20
    if kind == "phrase":  # up to 5 Chinese characters
        return n <= 5 and _is_cjk(value)
    return True


def _subscribe_data_error(data):
    """None, or the errmsg WeChat gives with 47003 for the first bad data value."""
    if not isinstance(data, dict) or not data:
        return "argument invalid! data is empty"
    for key, entry in data.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or value == "":
            return f"argument invalid! data.{key}.value is empty"
        kind = key.rstrip("0123456789")
        if not _subscribe_value_ok(kind, value):
            return f"argument invalid! data.{key}.value invalid"
    return None


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


INDEX_HTML = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>微信接口模拟服务</title>
<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.6}
code{background:#f3f3f3;padding:0 .3em}#out{font-size:1.2em;word-break:break-all}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left;
vertical-align:top;word-break:break-all}th{white-space:nowrap}</style>
</head>
<body>
<h1>微信接口模拟服务（本地替身）</h1>
<p>这不是微信。它在本机模拟微信与企业微信的服务器：小程序登录（code2Session）、access_token、
小程序订阅消息、企业微信应用消息与模板卡片、群机器人，返回与官方文档一致的 JSON 和错误码，供演示和自动化测试使用。</p>
<h2>模拟小程序登录</h2>
<p>小程序在手机上调用 <code>wx.login()</code> 会得到一个一次性登录码（5 分钟内有效，只能用一次）。
点下面的按钮即可模拟这一步，然后把登录码交给订货系统的登录接口。</p>
<p><label>openid（可留空，留空则随机生成一个新用户）：<br>
<input id="openid" size="40"></label></p>
<p><button id="mint">生成登录码</button></p>
<p id="out"></p>
<h2>模拟业务员（企业微信）</h2>
<p>企业微信把业务员的操作加密后推送到订货系统的回调地址 <code>/wecom/callback</code>。
在下方卡片上点“通过/驳回”，或以业务员身份给“订单助手”发消息（如 <code>待审批</code>、<code>订单 SO…</code>、<code>帮助</code>），
本服务会像企业微信一样加密、签名后推送过去；助手的回复稍后出现在通知列表里。</p>
<p><label>业务员 UserID：<input id="rep" size="16" value="ZhangWei"></label>
<label>消息：<input id="say" size="28" value="待审批"></label> <button id="send">发送</button></p>
<p id="cbout"></p>
<h2>微信支付（模拟）</h2>
<p>经销商对微信支付订单点“付款”后，这里出现一笔待支付的 JSAPI 订单。点“模拟付款”即模拟付款人在微信里输入密码完成支付：
本服务像微信支付一样用平台私钥签名、用 APIv3 密钥加密，把支付成功通知推送到订货系统的 <code>/pay/wechat/notify</code>。</p>
<p id="payout"></p>
<div id="payorders"></div>
<h2>客户群群发（模拟业务员确认）</h2>
<p>订货系统创建的客户群群发任务要由群主（业务员）在企业微信「群发助手」里确认后才会发出。点“以业务员身份发送”即模拟这一步。</p>
<p id="gmout"></p>
<div id="groupmsg"></div>
<h2>最近送达的通知</h2>
<p>经销商收到的小程序订阅消息、业务员收到的企业微信消息和卡片、内部群机器人消息都会出现在这里（每 3 秒刷新）。</p>
<div id="delivered">{delivered}</div>
<script>
async function pushCallback(path, payload) {
  var res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)});
  var data = await res.json();
  document.getElementById("cbout").textContent = data.message;
}
function tap(user, key) { pushCallback("/_standin/wecom/tap", {user: user, key: key}); }
document.getElementById("send").onclick = function () {
  pushCallback("/_standin/wecom/say", {user: document.getElementById("rep").value.trim(),
                                       content: document.getElementById("say").value});
};
document.getElementById("mint").onclick = async function () {
  var openid = document.getElementById("openid").value.trim();
  var res = await fetch("/_standin/wx/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(openid ? {openid: openid} : {})
  });
  var data = await res.json();
  document.getElementById("out").textContent = "登录码：" + data.code;
};
async function payOrder(no) {
  var res = await fetch("/_standin/pay/" + encodeURIComponent(no) + "/pay", {method: "POST"});
  var data = await res.json();
  document.getElementById("payout").textContent = data.message;
}
async function settleRefund(no, status) {
  var res = await fetch("/_standin/pay/refunds/" + encodeURIComponent(no) + "/settle?status=" + status, {method: "POST"});
  var data = await res.json();
  document.getElementById("payout").textContent = data.message;
}
async function refreshPay() {
  var res = await fetch("/_standin/pay/orders?format=html");
  if (res.ok) { document.getElementById("payorders").innerHTML = await res.text(); }
}
refreshPay();
setInterval(refreshPay, 3000);
async function confirmTask(msgid, userid) {
  var res = await fetch("/_standin/wecom/groupmsg/confirm", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({msgid: msgid, userid: userid})});
  var data = await res.json();
  document.getElementById("gmout").textContent = data.message;
  refreshGroupMsg();
}
async function refreshGroupMsg() {
  var res = await fetch("/_standin/wecom/groupmsg?format=html");
  if (res.ok) { document.getElementById("groupmsg").innerHTML = await res.text(); }
}
refreshGroupMsg();
setInterval(refreshGroupMsg, 3000);
setInterval(async function () {
  var res = await fetch("/_standin/delivered?format=html");
  if (res.ok) { document.getElementById("delivered").innerHTML = await res.text(); }
}, 3000);
</script>
</body>
</html>
"""


def _delivered_html(entries):
    if not entries:
        return "<p>还没有收到任何通知。</p>"
    rows = []
    for entry in reversed(entries):
        at = time.strftime("%H:%M:%S", time.localtime(entry["at"]))
        to = entry["to"] if isinstance(entry["to"], str) else "、".join(entry["to"])
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>".format(
                at, CHANNEL_LABELS.get(entry["channel"], entry["channel"]), html.escape(to),
                html.escape(entry["summary"]).replace("\n", "<br>"), _card_buttons(entry),
            )
        )
    return "<table><tr><th>时间</th><th>渠道</th><th>接收人</th><th>内容</th></tr>" + "".join(rows) + "</table>"


def _card_buttons(entry):
    """Buttons that play the rep tapping a delivered button card (through the callback)."""
    card = (entry.get("body") or {}).get("template_card") if entry["channel"] == "wecom_app" else None
    if not isinstance(card, dict) or not isinstance(entry["to"], str):
        return ""
    buttons = [
        "<button onclick='tap({}, {})'>{}</button>".format(
            html.escape(json.dumps(entry["to"])), html.escape(json.dumps(b.get("key", ""))), html.escape(b.get("text", ""))
        )
        for b in card.get("button_list") or [] if isinstance(b, dict)
    ]
    return "<br>" + " ".join(buttons) if buttons else ""


def _push_callback(state, inner_xml):
    """POST `inner_xml` to the app's callback URL encrypted and signed as WeCom does."""
    import xmltodict

    from app.integrations.wechat import WeComCallbackCrypto

    callback = state.callback
    if not callback:
        return 503, "模拟服务不知道订货系统的回调地址（由 demo serve 设置）"
    timestamp, nonce = str(int(clock.timestamp())), secrets.token_hex(8)
    crypto = WeComCallbackCrypto(callback["token"], callback["aes_key"], state.corp_id)
    outer = xmltodict.parse(crypto.encrypt_message(inner_xml, nonce, timestamp))["xml"]
    body = (
        f"<xml><ToUserName><![CDATA[{state.corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{outer['Encrypt']}]]></Encrypt>"
        f"<AgentID><![CDATA[{state.agent_id}]]></AgentID></xml>"
    )
    try:
        resp = requests.post(
            callback["url"], params={"msg_signature": outer["MsgSignature"], "timestamp": timestamp, "nonce": nonce},
            data=body.encode(), headers={"Content-Type": "text/xml"}, timeout=10,
        )
    except requests.RequestException as exc:
        return 502, f"推送到回调地址失败：{exc.__class__.__name__}"
    return resp.status_code, f"已推送到 {callback['url']}，回调应答 HTTP {resp.status_code}"


def _rep_event_xml(state, user, fields):
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{state.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{int(clock.timestamp())}</CreateTime>{inner}<AgentID>{state.agent_id}</AgentID></xml>"
    )


def create_standin_app(
    app_id="wx-demo-appid",
    secret="demo-app-secret",
    corp_id="ww-demo-corpid",
    corp_secret="demo-wecom-secret",
    agent_id=1000002,
    robot_keys=("demo-robot-key",),
    member_limit=WECOM_MEMBER_LIMIT_PER_MINUTE,
    robot_limit=ROBOT_LIMIT_PER_MINUTE,
):
    """A small Flask app impersonating api.weixin.qq.com and qyapi.weixin.qq.com.

    Defaults match the demo configuration (app/config.py). `member_limit` (WeCom
    app messages a member receives a minute; the rest are silently dropped) and
    `robot_limit` (robot messages a minute, then 45009) follow WeCom; None turns
    a limit off, e.g. for a throughput benchmark. Its state (a `StandinState`)
    is at `app.extensions["wechat_standin"]`.
    """
    app = Flask("wechat_standin")
    app.json.ensure_ascii = False
    state = StandinState(
        app_id, secret, corp_id, corp_secret, agent_id, robot_keys, member_limit=member_limit, robot_limit=robot_limit,
    )
    app.extensions["wechat_standin"] = state
    state.pay = PayState()
    register_pay_routes(app, state.pay)

    @app.before_request
    def record_and_fault():
        if request.path not in STANDIN_PATHS:
            return None
        state.record({
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(),
            "json": request.get_json(force=True, silent=True),
            "at": clock.timestamp(),
        })
        fault = state.take_fault(request.path)
        if fault is None:
            return None
        if fault["delay_seconds"]:
            time.sleep(fault["delay_seconds"])
        if fault["http_status"]:
            return "<html><body>stand-in fault</body></html>", fault["http_status"]
        if fault["errcode"] is not None:
            if request.path.startswith("/v3/"):
                return jsonify({"code": str(fault["errcode"]), "message": "模拟故障"}), 500
            return _error(fault["errcode"])
        return None  # a pure delay: answer normally, just late

    state.contact = ContactState()
    register_contact_routes(app, state, state.contact, _error, _ok, lambda: json_body(), state.deliver)

    def check_credentials(appid, secret):
        if not appid:
            return 41002
        if appid != state.app_id:
            return 40013
        if not secret:
            return 41004
        if secret != state.secret:
            return 40125
        return None

    def json_body():
        body = request.get_json(force=True, silent=True)
        return body if isinstance(body, dict) else None

    # --- WeChat ------------------------------------------------------------------

    @app.get("/sns/jscode2session")
    def jscode2session():
        args = request.args
        errcode = check_credentials(args.get("appid"), args.get("secret"))
        if errcode:
            return _error(errcode)
        code = args.get("js_code")
        if not code:
            return _error(41008)
        openid, errcode = state.redeem_code(code)
        if errcode:
            return _error(errcode)
        return jsonify({
            "openid": openid,
            "session_key": secrets.token_urlsafe(18),
            # Stable per openid, as if the app were bound to an open-platform account.
            "unionid": "u" + openid[1:],
        })

    @app.post("/cgi-bin/stable_token")
    def stable_token():
        body = json_body() or {}
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        errcode = check_credentials(body.get("appid"), body.get("secret"))
        if errcode:
            return _error(errcode)
        token, expires_in = state.stable_token(bool(body.get("force_refresh")))
        return jsonify({"access_token": token, "expires_in": expires_in})

    @app.get("/cgi-bin/token")
    def token():
        args = request.args
        if args.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        errcode = check_credentials(args.get("appid"), args.get("secret"))
        if errcode:
            return _error(errcode)
        # The classic endpoint hands out a fresh token on every call, apart from the stable token.
        token, expires_in = state.classic_token()
        return jsonify({"access_token": token, "expires_in": expires_in})

    @app.post("/cgi-bin/message/subscribe/send")
    def subscribe_send():
        errcode = state.check_token(request.args.get("access_token"), "mp")
        if errcode:
            return _error(errcode)
        body = json_body()
        if body is None:
            return _error(44002)
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser or state.is_invalid(touser):
            return _error(40003)
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id or state.is_invalid(template_id):
            return _error(40037)
        problem = _subscribe_data_error(body.get("data"))
        if problem:
            return _error(47003, problem)
        # WeChat documents the allowed values but not the errcode for others; 47003 here.
        if body.get("miniprogram_state", "formal") not in MINIPROGRAM_STATES:
            return _error(47003, "argument invalid! miniprogram_state invalid")
        if body.get("lang", "zh_CN") not in LANGS:
            return _error(47003, "argument invalid! lang invalid")
        if not state.use_subscription(touser, template_id):
            return _error(43101)
        msgid = state.next_msgid()
        state.deliver("mp_subscribe", touser, body, msgid=msgid)
        return _ok(msgid=msgid)

    # --- WeCom -------------------------------------------------------------------

    @app.get("/cgi-bin/gettoken")
    def gettoken():
        args = request.args
        if not args.get("corpid"):
            return _error(41002, "corpid missing")
        if args.get("corpid") != state.corp_id:
            return _error(40013, "invalid corpid")
        if not args.get("corpsecret"):
            return _error(41004, "corpsecret missing")
        if args.get("corpsecret") != state.corp_secret:
            return _error(40001, "invalid credential")
        token, expires_in = state.wecom_token()
        return _ok(access_token=token, expires_in=expires_in)

    def wecom_common(body):
        """Token, body and agentid checks shared by the app-message routes."""
        errcode = state.check_token(request.args.get("access_token"), "wecom")
        if errcode:
            return _error(errcode)
        if body is None:
            return _error(44002)
        if body.get("agentid") != state.agent_id:
            return _error(40056)
        return None

    def message_shape_error(body):
        msgtype = body.get("msgtype")
        if msgtype in ("text", "markdown"):
            content = (body.get(msgtype) or {}).get("content")
            if not isinstance(content, str) or not content.strip():
                return _error(44004)
            return None
        if msgtype == "template_card":
            card = body.get("template_card")
            if not isinstance(card, dict) or card.get("card_type") not in CARD_TYPES:
                return _error(40058, "template_card.card_type invalid")
            if card["card_type"] in INTERACTIVE_CARD_TYPES:
                # Documented: task_id is required, unique per app, <= 128 of [0-9a-zA-Z_-@].
                if not TASK_ID_RE.fullmatch(str(card.get("task_id") or "")):
                    return _error(40058, "template_card.task_id invalid")
            if card["card_type"] == "button_interaction" and not card.get("button_list"):
                return _error(40058, "template_card.button_list invalid")
            if not (card.get("main_title") or {}).get("title") and not card.get("sub_title_text"):
                return _error(40058, "template_card.main_title invalid")
            return None
        if msgtype in ("textcard", "news", "mpnews", "image", "voice", "video", "file", "miniprogram_notice"):
            return None if isinstance(body.get(msgtype), dict) else _error(40058, f"{msgtype} invalid")
        return _error(40008)

    @app.post("/cgi-bin/message/send")
    def message_send():
        body = json_body()
        problem = wecom_common(body)
        if problem:
            return problem
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        invalid = [u.lower() for u in users if state.is_invalid(u)]
        valid = [u for u in users if not state.is_invalid(u)]
        if not valid:
            return _error(81013, invaliduser="|".join(invalid))
        problem = message_shape_error(body)
        if problem:
            return problem
        if body.get("enable_duplicate_check") == 1:
            interval = body.get("duplicate_check_interval") or DEFAULT_DUPLICATE_CHECK_INTERVAL
            earlier = state.find_duplicate(body, interval)
            if earlier is not None:
                # WeCom: the same content within the interval is not received again.
                return _ok(**earlier)
        result = {"invaliduser": "|".join(invalid), "msgid": f"standin-msg-{state.next_msgid()}"}
        if body["msgtype"] == "template_card":
            card = body["template_card"]
            if card["card_type"] in INTERACTIVE_CARD_TYPES:
                if not state.claim_task_id(card["task_id"]):
                    # Undocumented errcode for a reused task_id; the rule itself is documented.
                    return _error(40058, "template_card.task_id duplicated")
                result["response_code"] = state.issue_response_code()
        state.remember_sent(body, result)
        state.deliver_app_message(valid, body, result)
        return _ok(**result)

    @app.post("/cgi-bin/message/update_template_card")
    def update_template_card():
        body = json_body()
        problem = wecom_common(body)
        if problem:
            return problem
        users = body.get("userids") or []
        if not isinstance(users, list):
            return _error(40058, "userids invalid")
        invalid = [str(u).lower() for u in users if state.is_invalid(str(u))]
        valid = [str(u) for u in users if not state.is_invalid(str(u))]
        if not valid and not body.get("atall"):
            return _error(81013, invaliduser=invalid)
        if not (body.get("button") or {}).get("replace_name") and not isinstance(body.get("template_card"), dict):
            return _error(40058, "button.replace_name invalid")
        if not state.use_response_code(body.get("response_code")):
            # Documented: a response_code is valid 72 h and usable once; its errcode is not.
            return _error(40058, "response_code invalid")
        state.deliver("wecom_card", valid, body)
        return _ok(invaliduser=invalid)

    @app.post("/cgi-bin/webhook/send")
    def webhook_send():
        key = request.args.get("key")
        if not key or key not in state.robot_keys:
            return _error(93000)
        body = json_body()
        if body is None:
            return _error(44002)
        msgtype = body.get("msgtype")
        if msgtype in ROBOT_CONTENT_MAX_BYTES:
            content = (body.get(msgtype) or {}).get("content")
            if not isinstance(content, str) or not content:
                return _error(44004)
            limit = ROBOT_CONTENT_MAX_BYTES[msgtype]
            if len(content.encode("utf-8")) > limit:
                return _error(40058, f"{msgtype}.content exceed max length {limit}")
        elif msgtype not in ("image", "news", "file", "voice", "template_card"):
            return _error(40008)
        if not state.robot_allowed(key):
            return _error(45009)
        state.deliver("wecom_robot", key, body)
        return _ok()

    # --- control ---------------------------------------------------------------------

    @app.post("/_standin/wx/subscribe")
    def wx_subscribe():
        body = json_body() or {}
        openid, template_ids = body.get("openid"), body.get("template_ids")
        if not isinstance(openid, str) or not openid or not isinstance(template_ids, list):
            return jsonify({"error": "需要 openid（字符串）和 template_ids（数组）"}), 400
        state.grant_subscription(openid, [str(t) for t in template_ids])
        return jsonify({t: "accept" for t in template_ids})

    @app.post("/_standin/wx/login")
    def wx_login():
        body = json_body() or {}
        return jsonify({"code": state.mint_code(body.get("openid") or None)})

    @app.post("/_standin/faults")
    def faults():
        body = json_body() or {}
        if body.get("path") not in STANDIN_PATHS:
            return jsonify({"error": "path 必须是以下之一：" + "、".join(STANDIN_PATHS)}), 400
        fault = state.add_fault(
            body["path"],
            errcode=body.get("errcode"),
            http_status=body.get("http_status"),
            times=body.get("times", 1),
            delay_seconds=body.get("delay_seconds"),
        )
        return jsonify(fault), 201

    @app.get("/_standin/requests")
    def recorded_requests():
        return jsonify(state.requests)

    @app.get("/_standin/delivered")
    def delivered():
        entries = state.delivered[-50:]
        if request.args.get("format") == "html":
            return _delivered_html(entries)
        return jsonify(entries)

    @app.post("/_standin/reset")
    def reset():
        state.reset()
        state.pay.reset()
        state.contact.reset()
        return jsonify({"ok": True})

    @app.post("/_standin/wecom/tap")
    def rep_taps_card():
        """Play a rep tapping a button card: a template_card_event with a fresh ResponseCode."""
        data = request.get_json(force=True, silent=True) or {}
        user, key = str(data.get("user") or ""), str(data.get("key") or "")
        if not user or not key:
            return jsonify({"message": "需要 user 和 key"}), 400
        xml = _rep_event_xml(state, user, {
            "MsgType": "event", "Event": "template_card_event", "EventKey": key,
            "TaskId": "order-" + key.partition(":")[2], "CardType": "button_interaction",
            "ResponseCode": state.issue_response_code(),
        })
        status, message = _push_callback(state, xml)
        return jsonify({"message": message}), 200 if status < 400 else 502

    @app.post("/_standin/wecom/say")
    def rep_says():
        """Play a rep typing a text message to the app (e.g. 待审批)."""
        data = request.get_json(force=True, silent=True) or {}
        user, content = str(data.get("user") or ""), str(data.get("content") or "")
        if not user or not content.strip():
            return jsonify({"message": "需要业务员 UserID 和消息内容"}), 400
        xml = _rep_event_xml(state, user, {
            "MsgType": "text", "Content": content, "MsgId": secrets.randbelow(10**18) + 10**18,
        })
        status, message = _push_callback(state, xml)
        return jsonify({"message": message}), 200 if status < 400 else 502

    @app.get("/")
    def index():
        return INDEX_HTML.replace("{delivered}", _delivered_html(state.delivered[-50:]))

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log: requests are recorded in `StandinServer.requests` instead."""

    def log_request(self, *args, **kwargs):
        pass


class StandinServer:
    """The stand-in served on a real port in a daemon thread.

    Use `StandinServer.start()`; state is reachable directly (no HTTP needed)
    through `mint_code`, `fail_next`, `mark_invalid`, `expire_tokens`,
    `requests`, `delivered`, `dropped` and `reset`.
    """

    def __init__(self, server, state):
        self._server = server
        self._state = state
        host, port = server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        # A short poll: `stop()` returns within 0.05 s instead of serve_forever's default 0.5 s.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wechat-standin", daemon=True
        )

    @classmethod
    def start(cls, host="127.0.0.1", port=0, **app_kwargs):
        """Serve `create_standin_app(**app_kwargs)`; port 0 picks a free port."""
        app = create_standin_app(**app_kwargs)
        server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        standin = cls(server, app.extensions["wechat_standin"])
        standin._thread.start()
        return standin

    @property
    def app_id(self):
        return self._state.app_id

    @property
    def secret(self):
        return self._state.secret

    @property
    def corp_id(self):
        return self._state.corp_id

    @property
    def corp_secret(self):
        return self._state.corp_secret

    @property
    def agent_id(self):
        return self._state.agent_id

    def mint_code(self, openid=None):
        """What wx.login() yields on a phone: a one-time code for openid."""
        return self._state.mint_code(openid)

    def fail_next(self, path, errcode=None, http_status=None, times=1, delay_seconds=None):
        """Script the next `times` requests to `path` to fail or be slow."""
        self._state.add_fault(path, errcode, http_status, times, delay_seconds)

    def connect_callback(self, url, token, aes_key):
        """Where simulated rep taps and messages are pushed: the app's /wecom/callback with
        its Token and EncodingAESKey (the corp id is the stand-in's own)."""
        self._state.callback = {"url": url, "token": token, "aes_key": aes_key}

    def mark_invalid(self, recipient):
        """An openid, template id or WeCom userid the platform does not know (40003/40037/81013)."""
        self._state.mark_invalid(recipient)

    def require_subscriptions(self, required=True):
        """From now on (until reset) a subscribe message needs a granted subscription, else 43101."""
        self._state.require_subscriptions(required)

    def grant_subscription(self, openid, *template_ids):
        """The user accepted these templates in wx.requestSubscribeMessage: one message each."""
        self._state.grant_subscription(openid, template_ids)

    def expire_tokens(self):
        """All issued access tokens expire now: the next call with one answers 42001."""
        self._state.expire_tokens()

    @property
    def requests(self):
        """Snapshot of recorded WeChat/WeCom-route requests (method, path, query, json, at)."""
        return self._state.requests

    @property
    def delivered(self):
        """Messages that reached someone: dicts with channel (mp_subscribe, wecom_app,
        wecom_card, wecom_robot), to, body, at, summary (and msgid where there is one)."""
        return self._state.delivered

    def delivered_to(self, to, channel=None):
        """Delivered messages for one recipient (openid, userid or robot key)."""
        return [
            d for d in self._state.delivered
            if (d["to"] == to or (isinstance(d["to"], list) and to in d["to"]))
            and (channel is None or d["channel"] == channel)
        ]

    @property
    def dropped(self):
        """WeCom app messages silently dropped (over 30 a minute for one member)."""
        return self._state.dropped

    def reset(self):
        """Forget codes, faults, invalid marks, subscriptions, recorded requests and deliveries (tokens stay valid),
        and WeChat Pay's orders and notifications (the merchant's keys stay)."""
        self._state.reset()
        self._state.pay.reset()
        self._state.contact.reset()

    # --- WeCom customer contact -----------------------------------------------------------

    def add_customer_group(self, name, owner, external_members=3, chat_id=None, owner_status=0):
        """A customer group owned by WeCom member `owner`; returns its chat_id."""
        return self._state.contact.add_group(name=name, owner=owner, external_members=external_members,
                                             chat_id=chat_id, owner_status=owner_status)

    def dismiss_customer_group(self, chat_id):
        self._state.contact.dismiss(chat_id)

    def confirm_group_message(self, msgid, userid, skip=(), not_friend=()):
        """The rep taps 发送 in 群发助手 (as POST /_standin/wecom/groupmsg/confirm): (ok, message)."""
        return self._state.contact.confirm(msgid, userid, skip=set(skip), not_friend=set(not_friend))

    def group_message_tasks(self):
        return self._state.contact.tasks()

    def set_group_monthly_limit(self, limit):
        """Group messages a customer group may receive a month (None: the month's days)."""
        self._state.contact.monthly_limit = limit

    # --- WeChat Pay ---------------------------------------------------------------------

    @property
    def pay(self):
        """The WeChat Pay side (`standin_pay.PayState`): `configure(...)` the merchant's keys,
        `get(out_trade_no)`, `mark_paid`, `notification(...)`, `send_notification`, `orders()`."""
        return self._state.pay

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
