"""WeCom application-message bodies, as `/cgi-bin/message/send` documents them (without
`touser`/`agentid`, which delivery adds): the shapes every sender of a WeCom message
shares — the rep alerts and cards (`bots.rep_alerts`), announcements, the bot's replies,
policy and campaign reminders."""

# WeCom drops an identical message to the same member within this window (seconds, ≤ 4 h).
DUPLICATE_CHECK_INTERVAL = 1800


def text_message(content):
    """A /cgi-bin/message/send text body (without touser/agentid)."""
    return {
        "msgtype": "text",
        "text": {"content": content},
        "enable_duplicate_check": 1,
        "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL,
    }


def clip(text, limit):
    """Shorten to `limit` characters (WeCom's recommended field lengths), marking the cut."""
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
