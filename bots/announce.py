"""Announcements to the brand's internal WeCom groups through group robots.

`announce_to_internal_group(title, text, url=None)` posts one markdown message to every robot
named in WECOM_ANNOUNCE_ROBOTS ("default" is WECOM_ROBOT_KEY; other names come from
WECOM_ROBOT_KEYS). The subscribers at the end post when a campaign is sent (`campaign.sending`)
and when a policy is published (`policy.published`). The markdown stays within the robot's 4096-byte limit (whole lines dropped from
the end, with a note). It writes outbox rows (channel wecom_robot), so delivery respects each
robot's 20 messages a minute (app.notify.delivery holds the rest back) and a repeated
announcement with the same `dedupe_key` is posted once.
"""
import hashlib

from flask import url_for

from app.audience import service as audiences
from app.integrations.wecom_messages import clip
from app.policies.models import CATEGORY_LABELS
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


# --- subscribers (registered by create_app) ----------------------------------------------

def policy_published(session, *, policy, changes):
    """One markdown post per version of a policy to the brand's internal WeCom groups (the
    robots WECOM_ANNOUNCE_ROBOTS names). Subscribes to `policy.published`."""
    audience = audiences.load("policy", policy.id, session=session)
    category = CATEGORY_LABELS[policy.category]
    lines = [
        f"> 版本：第 {policy.version} 版" + ("（需经销商确认）" if policy.ack_required else ""),
        f"> 受众：{clip(audiences.describe(audience, session=session), 200)}",
    ]
    if policy.effective_from or policy.effective_to:
        lines.append(f"> 有效期：{policy.effective_from or '即日起'} 至 {policy.effective_to or '长期'}")
    if changes:
        lines.append("**本次更新**")
        lines += [f"- {clip(c, 200)}" for c in changes]
    announce_to_internal_group(
        f"{category}{'更新' if policy.version > 1 else '发布'}：{clip(policy.title, 60)}", "\n".join(lines),
        session=session, dedupe_key=f"policy:{policy.id}:v{policy.version}", ref=("policy", policy.id),
    )


def campaign_sending(session, *, campaign, plan):
    """One post to the internal groups when a campaign goes out to the reps' customer groups.
    Subscribes to `campaign.sending`."""

    groups = sum(len(v) for v in plan["senders"].values())
    lines = [
        f"客户群群发「{campaign.title}」已下发给 {len(plan['senders'])} 位业务员，共 {groups} 个客户群，"
        "请在企业微信「群发助手」中确认发送。",
    ]
    if plan["dropped"]:
        lines.append(f"另有 {len(plan['dropped'])} 个群未纳入（本月次数已满或群主离职）。")
    if campaign.text:
        lines.append("> " + campaign.text[:300].replace("\n", "\n> "))
    try:
        link = url_for("console.campaign_detail", campaign_id=campaign.id, _external=True)
    except RuntimeError:  # a job outside a request: no server name to build an absolute URL
        link = None
    announce_to_internal_group(f"客户群群发：{campaign.title}", "\n".join(lines), link, session=session,
                               dedupe_key=f"campaign:{campaign.id}:announce", ref=("campaign", campaign.id))
