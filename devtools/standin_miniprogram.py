"""The stand-in's WeChat mini-program side: login (code2Session), access tokens, subscribe
messages with WeChat's data rules, and the control routes that play the phone (wx.login(),
wx.requestSubscribeMessage). Part of `devtools.standin`."""
import re
import secrets

from flask import jsonify, request

from devtools.standin_state import _error, _ok, json_body

MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


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


def register_miniprogram_routes(app, state):
    """The mini-program routes of `create_standin_app`, on `state` (a `StandinState`)."""

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

    # --- control: what the mini-program does on a phone ----------------------------------

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
