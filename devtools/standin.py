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
Kuaidi100 (快递100) tracking: POST /poll (subscribe) and its pushes to the subscription's
callbackurl: see `devtools.standin_kuaidi100`.

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

The stand-in's parts: `standin_state` (what it remembers, errcodes, recorded paths),
`standin_miniprogram` and `standin_wecom` (the platform routes), `standin_contact` (WeCom
customer contact), `standin_pay` (WeChat Pay), `standin_callback` (playing a rep through the
app's WeCom callback) and `standin_pages` (its own page); this module assembles them into one
Flask app and serves it (`StandinServer`).

These modules must not import wechatpy: they play the other side.
"""
import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from app.kernel import clock
from devtools.standin_callback import register_callback_routes
from devtools.standin_contact import ContactState, register_contact_routes
from devtools.standin_kuaidi100 import Kuaidi100State, register_kuaidi100_routes
from devtools.standin_miniprogram import register_miniprogram_routes
from devtools.standin_pages import INDEX_HTML, _delivered_html
from devtools.standin_pay import PayState, register_pay_routes
from devtools.standin_state import (
    ROBOT_LIMIT_PER_MINUTE,
    STANDIN_PATHS,
    WECOM_MEMBER_LIMIT_PER_MINUTE,
    StandinState,
    _error,
    _ok,
    json_body,
)
from devtools.standin_wecom import register_wecom_routes


def create_standin_app(
    app_id="wx-demo-appid",
    secret="demo-app-secret",
    corp_id="ww-demo-corpid",
    corp_secret="demo-wecom-secret",
    agent_id=1000002,
    robot_keys=("demo-robot-key",),
    member_limit=WECOM_MEMBER_LIMIT_PER_MINUTE,
    robot_limit=ROBOT_LIMIT_PER_MINUTE,
    kuaidi100_key="demo-kuaidi100-key",
):
    """A small Flask app impersonating api.weixin.qq.com and qyapi.weixin.qq.com.

    Defaults match the demo configuration (app/config.py). `member_limit` (WeCom
    app messages a member receives a minute; the rest are silently dropped) and
    `robot_limit` (robot messages a minute, then 45009) follow WeCom; None turns
    a limit off, e.g. for a throughput benchmark. `kuaidi100_key` is the Kuaidi100
    customer key /poll accepts. Its state (a `StandinState`) is at
    `app.extensions["wechat_standin"]`.
    """
    app = Flask("wechat_standin")
    app.json.ensure_ascii = False
    state = StandinState(
        app_id, secret, corp_id, corp_secret, agent_id, robot_keys, member_limit=member_limit, robot_limit=robot_limit,
    )
    app.extensions["wechat_standin"] = state
    state.pay = PayState()
    register_pay_routes(app, state.pay)
    state.kuaidi100 = Kuaidi100State(kuaidi100_key)
    register_kuaidi100_routes(app, state.kuaidi100)

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
    register_contact_routes(app, state, state.contact, _error, _ok, json_body, state.deliver)
    register_miniprogram_routes(app, state)
    register_wecom_routes(app, state)

    # --- control ---------------------------------------------------------------------

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
        state.kuaidi100.reset()
        return jsonify({"ok": True})

    register_callback_routes(app, state)

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
        WeChat Pay's orders and notifications (the merchant's keys stay) and Kuaidi100's subscriptions."""
        self._state.reset()
        self._state.pay.reset()
        self._state.contact.reset()
        self._state.kuaidi100.reset()

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

    # --- Kuaidi100 ----------------------------------------------------------------------

    @property
    def kuaidi100(self):
        """The Kuaidi100 side (`standin_kuaidi100.Kuaidi100State`): `key`, `subscriptions`,
        `fail_next(return_code)`, `push_form(...)` (a signed push to post yourself), `push(...)`."""
        return self._state.kuaidi100

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
