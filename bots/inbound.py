"""The job behind the callback: one run per inbound WeCom message or event.

`handle_inbound(message)` receives the decrypted message as a flat dict of WeCom's XML
fields (FromUserName, MsgType, Content, MsgId, Event, EventKey, ResponseCode, ...) plus the
callback's `dedupe_key`, and hands it to the commands or the card handler. Every reply is an
outbox row written by `bots.replies`.
"""
import logging

from bots import cards, commands
from bots.replies import reply

log = logging.getLogger(__name__)

NON_TEXT_REPLY = "订单助手目前只看得懂文字消息。发送「帮助」查看可用命令。"


def handle_inbound(message):
    """Dispatch one inbound message (job entry point; safe to run twice)."""
    msg_type = message.get("MsgType")
    if msg_type == "text":
        commands.handle_text(message)
    elif msg_type == "event" and message.get("Event") == "template_card_event":
        cards.handle_card_event(message)
    elif msg_type in ("image", "voice", "video", "location", "link", "file"):
        reply(message, NON_TEXT_REPLY)
    else:
        # enter_agent, subscribe and other events need no answer.
        log.info("WeCom %s/%s from %s ignored", msg_type, message.get("Event"), message.get("FromUserName"))
