"""The stand-in's WeCom side: access tokens, app messages (text, markdown, template cards)
with WeCom's checks, template-card updates and the group robot. Part of `devtools.standin`."""
import re

from flask import request

from devtools.standin_state import _error, _ok, json_body

DEFAULT_DUPLICATE_CHECK_INTERVAL = 1800
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE_CARD_TYPES = ("button_interaction", "vote_interaction", "multiple_interaction")
TASK_ID_RE = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
ROBOT_CONTENT_MAX_BYTES = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}


def register_wecom_routes(app, state):
    """The WeCom routes of `create_standin_app`, on `state` (a `StandinState`)."""

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
