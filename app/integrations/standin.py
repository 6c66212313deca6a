"""A local stand-in for WeChat's mini-program servers.

Used by the demo and the tests: real HTTP on 127.0.0.1, speaking WeChat's
documented JSON (including its error codes), so the gateway code under test is
exactly the code that runs against api.weixin.qq.com.

WeChat routes:
    GET  /sns/jscode2session   auth.code2Session
    POST /cgi-bin/stable_token getStableAccessToken
    GET  /cgi-bin/token        getAccessToken

Control routes (not part of WeChat):
    POST /_standin/wx/login    {"openid": optional} -> {"code": ...}; what wx.login() does on a phone
    POST /_standin/faults      script failures for a path (errcode / http_status / delay_seconds, times)
    GET  /_standin/requests    recorded WeChat-route requests
    POST /_standin/reset       forget codes, faults, tokens and recorded requests

This module must not import wechatpy: it plays the other side.
"""
import secrets
import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

CODE_TTL_SECONDS = 5 * 60
TOKEN_TTL_SECONDS = 7200

# errcode -> errmsg, as WeChat spells them.
ERRMSG = {
    -1: "system error",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
}

WECHAT_PATHS = ("/sns/jscode2session", "/cgi-bin/stable_token", "/cgi-bin/token")


def _error(errcode, errmsg=None):
    return jsonify({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error")})


def _random_openid():
    # Real openids are 28 characters starting with "o".
    return "o" + secrets.token_urlsafe(21)[:27]


class StandinState:
    """Everything the stand-in remembers; all access goes through the lock."""

    def __init__(self, app_id, secret):
        self.app_id = app_id
        self.secret = secret
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._codes = {}  # js_code -> {"openid", "expires_at", "used"}
            self._faults = {}  # path -> list of fault dicts, applied in order
            self._requests = []
            self._token = None  # (access_token, expires_at)

    # --- login codes -------------------------------------------------------

    def mint_code(self, openid=None):
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "openid": openid or _random_openid(),
                "expires_at": time.time() + CODE_TTL_SECONDS,
                "used": False,
            }
        return code

    def redeem_code(self, code):
        """Return (openid, None) or (None, errcode); marks the code used."""
        with self._lock:
            entry = self._codes.get(code)
            if entry is None or entry["expires_at"] < time.time():
                return None, 40029
            if entry["used"]:
                return None, 40163
            entry["used"] = True
            return entry["openid"], None

    # --- access token ------------------------------------------------------

    def stable_token(self, force_refresh=False):
        """Same token while valid (like WeChat), a new one when forced or expired."""
        with self._lock:
            now = time.time()
            if force_refresh or self._token is None or self._token[1] <= now:
                self._token = (secrets.token_urlsafe(48), now + TOKEN_TTL_SECONDS)
            token, expires_at = self._token
            return token, max(0, int(expires_at - now))

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
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.6}
code{background:#f3f3f3;padding:0 .3em}#out{font-size:1.2em;word-break:break-all}</style>
</head>
<body>
<h1>微信接口模拟服务（本地替身）</h1>
<p>这不是微信。它在本机模拟微信服务器的小程序登录接口（code2Session）和
access_token 接口，返回与微信文档一致的 JSON 和错误码，供演示和自动化测试使用。</p>
<p>小程序在手机上调用 <code>wx.login()</code> 会得到一个一次性登录码（5 分钟内有效，只能用一次）。
点下面的按钮即可模拟这一步，然后把登录码交给订货系统的登录接口。</p>
<p><label>openid（可留空，留空则随机生成一个新用户）：<br>
<input id="openid" size="40"></label></p>
<p><button id="mint">生成登录码</button></p>
<p id="out"></p>
<script>
document.getElementById("mint").onclick = async function () {
  var openid = document.getElementById("openid").value.trim();
  var res = await fetch("/_standin/wx/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(openid ? {openid: openid} : {})
  });
  var data = await res.json();
  document.getElementById("out").textContent = "登录码：" + data.code;
};
</script>
</body>
</html>
"""


def create_standin_app(app_id="wx-demo-appid", secret="demo-app-secret"):
    """A small Flask app impersonating api.weixin.qq.com for one mini-program.

    Its state (a `StandinState`) is at `app.extensions["wechat_standin"]`.
    """
    app = Flask("wechat_standin")
    state = StandinState(app_id, secret)
    app.extensions["wechat_standin"] = state

    @app.before_request
    def record_and_fault():
        if request.path not in WECHAT_PATHS:
            return None
        state.record({
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(),
            "json": request.get_json(force=True, silent=True),
        })
        fault = state.take_fault(request.path)
        if fault is None:
            return None
        if fault["delay_seconds"]:
            time.sleep(fault["delay_seconds"])
        if fault["http_status"]:
            return "<html><body>stand-in fault</body></html>", fault["http_status"]
        if fault["errcode"] is not None:
            return _error(fault["errcode"])
        return None  # a pure delay: answer normally, just late

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
        body = request.get_json(force=True, silent=True) or {}
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
        # The classic endpoint hands out a fresh token on every call; it is
        # kept apart from the stable token, as on WeChat.
        return jsonify({"access_token": secrets.token_urlsafe(48), "expires_in": TOKEN_TTL_SECONDS})

    @app.post("/_standin/wx/login")
    def wx_login():
        body = request.get_json(force=True, silent=True) or {}
        return jsonify({"code": state.mint_code(body.get("openid") or None)})

    @app.post("/_standin/faults")
    def faults():
        body = request.get_json(force=True, silent=True) or {}
        if body.get("path") not in WECHAT_PATHS:
            return jsonify({"error": "path 必须是以下之一：" + "、".join(WECHAT_PATHS)}), 400
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

    @app.post("/_standin/reset")
    def reset():
        state.reset()
        return jsonify({"ok": True})

    @app.get("/")
    def index():
        return INDEX_HTML

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log: requests are recorded in `StandinServer.requests` instead."""

    def log_request(self, *args, **kwargs):
        pass


class StandinServer:
    """The stand-in served on a real port in a daemon thread.

    Use `StandinServer.start()`; state is reachable directly (no HTTP needed)
    through `mint_code`, `fail_next`, `requests` and `reset`.
    """

    def __init__(self, server, state):
        self._server = server
        self._state = state
        host, port = server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, name="wechat-standin", daemon=True
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

    def mint_code(self, openid=None):
        """What wx.login() yields on a phone: a one-time code for openid."""
        return self._state.mint_code(openid)

    def fail_next(self, path, errcode=None, http_status=None, times=1, delay_seconds=None):
        """Script the next `times` requests to `path` to fail or be slow."""
        self._state.add_fault(path, errcode, http_status, times, delay_seconds)

    @property
    def requests(self):
        """Snapshot of recorded WeChat-route requests (method, path, query, json)."""
        return self._state.requests

    def reset(self):
        self._state.reset()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
