"""The stand-in plays a rep in WeCom: a tap on a button card or a text message to the app,
encrypted and signed as WeCom does and pushed to the app's /wecom/callback (`demo serve`
tells the stand-in where, through `StandinServer.connect_callback`). Part of `devtools.standin`."""
import secrets

import requests
from flask import jsonify, request

from app.kernel import clock


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


def register_callback_routes(app, state):
    """The control routes that play a rep: POST /_standin/wecom/tap and /_standin/wecom/say."""

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
