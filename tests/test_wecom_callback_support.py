"""WeCom's side of the callback, built from WeCom's documented scheme (not from wechatpy),
so the tests check our decryption against an independent implementation.

Encrypt = base64(AES-256-CBC(key, iv=key[:16], PKCS#7 to 32 bytes,
                 random16 + len(msg) as 4 bytes network order + msg + CorpID)),
key = base64decode(EncodingAESKey + "="), msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt)).
"""
import base64
import hashlib
import itertools
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CALLBACK = "/wecom/callback"
_msg_ids = itertools.count(7_330_000_000_000_000_001)


def encrypt(aes_key, plain, corp_id):
    key = base64.b64decode(aes_key + "=")
    raw = plain.encode("utf-8")
    data = os.urandom(16) + struct.pack("!I", len(raw)) + raw + corp_id.encode()
    pad = 32 - len(data) % 32
    data += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def decrypt(aes_key, encrypted):
    key = base64.b64decode(aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    data = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    data = data[: -data[-1]]
    length = struct.unpack("!I", data[16:20])[0]
    return data[20 : 20 + length].decode(), data[20 + length :].decode()


def sign(token, timestamp, nonce, encrypted):
    return hashlib.sha1("".join(sorted([token, str(timestamp), nonce, encrypted])).encode()).hexdigest()


class WeCom:
    """Plays WeCom against our callback URL with the app's Token/EncodingAESKey/CorpID."""

    def __init__(self, client, config):
        self.client = client
        self.token = config["WECOM_TOKEN"]
        self.aes_key = config["WECOM_AES_KEY"]
        self.corp_id = config["WECOM_CORP_ID"]
        self.agent_id = config["WECOM_AGENT_ID"]

    def verify_url(self, echo_plain="echo-5566778899", *, timestamp=None, nonce="1372623149", token=None):
        timestamp = timestamp or int(time.time())
        echostr = encrypt(self.aes_key, echo_plain, self.corp_id)
        signature = sign(token or self.token, timestamp, nonce, echostr)
        return self.client.get(
            CALLBACK,
            query_string={"msg_signature": signature, "timestamp": str(timestamp), "nonce": nonce, "echostr": echostr},
        )

    def post(self, inner_xml, *, timestamp=None, nonce="1372623149", corp_id=None, token=None):
        """POST an encrypted message exactly as WeCom does (signature in the query string)."""
        timestamp = timestamp or int(time.time())
        encrypted = encrypt(self.aes_key, inner_xml, corp_id or self.corp_id)
        body = (
            f"<xml><ToUserName><![CDATA[{corp_id or self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        signature = sign(token or self.token, timestamp, nonce, encrypted)
        return self.client.post(
            CALLBACK,
            query_string={"msg_signature": signature, "timestamp": str(timestamp), "nonce": nonce},
            data=body.encode(),
            content_type="text/xml",
        )

    def text_xml(self, content, *, user="WangYeWu", msg_id=None, create_time=None):
        """A text message as WeCom documents it (接收消息 → 文本消息)."""
        msg_id = msg_id or next(_msg_ids)
        return (
            "<xml>"
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID>"
            "</xml>"
        )

    def card_event_xml(self, event_key, *, user="WangYeWu", task_id="", response_code="RC-1", create_time=None):
        """A template_card_event as WeCom documents it (事件格式 → 模板卡片事件推送)."""
        return (
            "<xml>"
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[template_card_event]]></Event>"
            f"<EventKey><![CDATA[{event_key}]]></EventKey>"
            f"<TaskId><![CDATA[{task_id}]]></TaskId>"
            "<CardType><![CDATA[button_interaction]]></CardType>"
            f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID>"
            "</xml>"
        )

    def say(self, content, **kw):
        return self.post(self.text_xml(content, **kw))

    def tap(self, event_key, **kw):
        order_no = event_key.partition(":")[2]
        kw.setdefault("task_id", f"order-{order_no}")
        return self.post(self.card_event_xml(event_key, **kw))
