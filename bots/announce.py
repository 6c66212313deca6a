"""Announcements to the brand's internal WeCom groups through group robots.

`announce_to_internal_group(title, text, url=None)` posts one markdown message to every robot
named in WECOM_ANNOUNCE_ROBOTS ("default" is WECOM_ROBOT_KEY; other names come from
WECOM_ROBOT_KEYS). Campaigns call it when they are sent; policies call it when one is
published. The markdown stays within the robot's 4096-byte limit (whole lines dropped from
the end, with a note). It writes outbox rows (channel wecom_robot), so delivery respects each
robot's 20 messages a minute (app.notify.delivery holds the rest back) and a repeated
announcement with the same `dedupe_key` is posted once.
"""
import hashlib

from bots.digest import MAX_BYTES, fit_lines

JOB_QUEUE = "low"


def compose(title, text, url=None):
    """The announcement's markdown (≤ MAX_BYTES bytes, UTF-8)."""
    from flask import current_app

    brand = current_app.config.get("BRAND_NAME", "")
    lines = [f"## {title}"]
    lines += [line for line in (text or "").splitlines()]
    if url:
        lines.append(f"[查看详情]({url})")
    lines.append(f"<font color=\"comment\">{brand}订货系统</font>")
    return fit_lines(lines, MAX_BYTES)


def announce_to_internal_group(title, text, url=None, *, session=None, dedupe_key=None, robots=None, ref=None):
    """Post `title` and `text` (and a link to `url`) to the internal group robots.

    With `session`, the outbox rows join that open write transaction (they commit or roll back
    with the change announced); without, they are written in a transaction of their own.
    `dedupe_key` (default: a hash of the content) makes a repeat a no-op. Returns the outbox ids
    written (an empty list when already announced).
    """
    from flask import current_app

    from app.database import write_transaction
    from app.notify import service as outbox

    content = compose(title, text, url)
    names = list(robots or current_app.config.get("WECOM_ANNOUNCE_ROBOTS") or ("default",))
    key = dedupe_key or "announce:" + hashlib.sha1(content.encode("utf-8")).hexdigest()
    ref_type, ref_id = ref if ref else (None, None)

    def write(session):
        ids = []
        for name in names:
            outbox_id = outbox.add(
                session, channel="wecom_robot", event="announcement", recipient=name,
                payload={"msgtype": "markdown", "markdown": {"content": content}},
                dedupe_key=f"{key}:wecom_robot:{name}"[:160], queue=JOB_QUEUE, ref_type=ref_type, ref_id=ref_id,
            )
            if outbox_id is not None:
                ids.append(outbox_id)
        return ids

    if session is not None:
        return write(session)
    with write_transaction() as own:
        return write(own)
