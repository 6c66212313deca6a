"""Customer groups and campaigns to them: sync, mapping, planning, sending, results.

WeCom does not let a server post into a customer group. `add_msg_template` with
chat_type "group" creates a task for one member (the groups' owner, `sender`); the member
confirms it in the WeCom client and only then is anything sent. So:

- the plan groups the audience's mapped groups by owner, one task per owner;
- every group is "等待业务员确认" (waiting) until get_groupmsg_task says the owner sent
  (status 2) and get_groupmsg_send_result lists the group (1 sent; 2/3 failed; a group the
  owner left out is 未发送);
- each group receives a limited number of group messages a month (`monthly_limit`): the
  plan leaves out (status `dropped`, with the reason) groups with nothing left, counting
  what was sent this month and what is still waiting for a rep;
- a task the owner has not sent can be stopped (cancel_groupmsg_send); what was sent
  cannot be recalled (WeCom's documents say so).

Nothing here talks to WeCom inside a database transaction: rows are claimed and committed,
WeCom is called, the outcome is written in a transaction of its own.
"""
import calendar
import logging
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, or_, select, update

from app.audience import service as audiences
from app.audit import service as audit
from app.campaigns.models import (
    CAMPAIGN_STATUS_LABELS,
    Campaign,
    CampaignAttachment,
    CampaignGroup,
    CampaignSender,
    CustomerGroup,
)
from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import BUSINESS_TZ, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.notify import service as outbox
from app.staff.models import Staff

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 9
TEXT_MAX_BYTES = 4000  # add_msg_template text.content
LINK_TITLE_MAX_BYTES = 128
LINK_DESC_MAX_BYTES = 512
MINIPROGRAM_TITLE_MAX_BYTES = 64
MAX_CHATS_PER_TASK = 2000  # chat_id_list
MEDIA_REUSE = timedelta(hours=60)  # media_id lasts 3 days; re-upload well before
GROUP_PAGE_SIZE = 50
CAMPAIGN_PAGE_SIZE = 30
JOB_QUEUE = "low"
JOB_TIMEOUT = 600

# get_groupmsg_send_result status -> (our status, reason)
RESULT_STATUSES = {
    0: ("not_sent", "未发送"),
    1: ("sent", None),
    2: ("failed", "因客户不是好友导致发送失败"),
    3: ("failed", "该群已收到其他群发消息，达到本月接收上限"),
}


class _System:
    id = None
    name = "系统"


SYSTEM = _System()


# --- the monthly limit --------------------------------------------------------------

def month_bounds(now=None):
    """[start, end) of the current China month, in UTC."""
    now = (now or utcnow()).astimezone(BUSINESS_TZ)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.astimezone(timezone.utc), (start + timedelta(days=days)).astimezone(timezone.utc)


def monthly_limit(now=None):
    """Group messages a customer group may receive this month: CAMPAIGN_GROUP_MONTHLY_LIMIT, or
    (0, the default) as many as the month has days, as WeCom documents for add_msg_template."""
    configured = current_app.config.get("CAMPAIGN_GROUP_MONTHLY_LIMIT") or 0
    if configured > 0:
        return configured
    now = (now or utcnow()).astimezone(BUSINESS_TZ)
    return calendar.monthrange(now.year, now.month)[1]


def used_this_month(session, group_ids, *, exclude_campaign_id=None):
    """{group_id: messages counted this month}: sent this month, plus those of campaigns sent this
    month still waiting for a rep (they count when sent, so they hold their place; a task left
    unconfirmed from an earlier month counts again only once it is sent)."""
    if not group_ids:
        return {}
    start, end = month_bounds()
    sent = (CampaignGroup.status == "sent") & (CampaignGroup.sent_at >= start) & (CampaignGroup.sent_at < end)
    waiting = CampaignGroup.status.in_(("waiting", "planned")) & (Campaign.sent_at >= start) & (Campaign.sent_at < end)
    query = (
        select(CampaignGroup.group_id, func.count())
        .join(Campaign, Campaign.id == CampaignGroup.campaign_id)
        .where(CampaignGroup.group_id.in_(list(group_ids)), or_(sent, waiting))
        .group_by(CampaignGroup.group_id)
    )
    if exclude_campaign_id is not None:
        query = query.where(CampaignGroup.campaign_id != exclude_campaign_id)
    return dict(session.execute(query).all())


def remaining_this_month(session, group_ids, **kwargs):
    limit = monthly_limit()
    used = used_this_month(session, group_ids, **kwargs)
    return {gid: max(0, limit - used.get(gid, 0)) for gid in group_ids}


# --- customer groups ----------------------------------------------------------------

def _gateway():
    from app.integrations.wechat import wecom_contact_gateway

    return wecom_contact_gateway(current_app._get_current_object())


def owner_userids(session):
    """The WeCom userids whose groups are synced: every active rep (role sales) with one."""
    return list(session.execute(
        select(Staff.wecom_userid).where(Staff.active.is_(True), Staff.role == "sales", Staff.wecom_userid.is_not(None))
        .order_by(Staff.wecom_userid)
    ).scalars())


def sync_groups(*, actor=SYSTEM, owners=None):
    """Fetch the groups owned by `owners` (default: every rep's userid) from groupchat/list and
    each group's details from groupchat/get, and store them. A group stored before, owned by
    one of these owners, that WeCom no longer lists is marked dismissed. Audited as one entry.

    Returns counts. Raises WeChatError when WeCom cannot be asked (nothing is changed then).
    """
    owners = owners if owners is not None else owner_userids(db.session)
    db.session.rollback()  # no transaction held open while WeCom answers
    if not owners:
        return {"owners": 0, "groups": 0, "new": 0, "dismissed": 0}
    gateway = _gateway()
    listed = gateway.list_group_chats(owners)
    details = {}
    for item in listed:
        chat = gateway.get_group_chat(item["chat_id"])
        members = chat.get("member_list") or []
        details[item["chat_id"]] = {
            "name": (chat.get("name") or "")[:128],
            "owner_userid": chat.get("owner") or "",
            "owner_status": int(item.get("status") or 0),
            "member_count": len(members),
            "external_count": sum(1 for m in members if m.get("type") == 2),
            "wecom_created_at": datetime.fromtimestamp(int(chat["create_time"]), timezone.utc)
            if chat.get("create_time") else None,
        }
    now = utcnow()
    with write_transaction() as session:
        existing = {g.chat_id: g for g in session.execute(
            select(CustomerGroup).where(or_(CustomerGroup.chat_id.in_(list(details)),
                                            CustomerGroup.owner_userid.in_(owners)))
        ).scalars()}
        new = dismissed = 0
        for chat_id, values in details.items():
            group = existing.get(chat_id)
            if group is None:
                group = CustomerGroup(chat_id=chat_id, created_at=now)
                session.add(group)
                new += 1
            for key, value in values.items():
                setattr(group, key, value)
            group.status, group.dismissed_at, group.synced_at, group.updated_at = "active", None, now, now
        for chat_id, group in existing.items():
            if chat_id not in details and group.status == "active":
                group.status, group.dismissed_at, group.updated_at = "dismissed", now, now
                dismissed += 1
        result = {"owners": len(owners), "groups": len(details), "new": new, "dismissed": dismissed}
        audit.record(session, actor=actor, action="groups.sync", entity_type="customer_group", entity_id="sync",
                     label=f"同步 {len(owners)} 位群主的客户群", after=result)
    return result


def suggest_dealer(group_name, dealers):
    """The dealer whose name, or its trade name (「广州市天河区鑫达商贸有限公司」 -> 「鑫达」), appears
    in the group's name; the longest match wins; None when none does."""
    best = None
    for dealer in dealers:
        for candidate in name_candidates(dealer.name):
            if candidate in (group_name or "") and (best is None or len(candidate) > best[0]):
                best = (len(candidate), dealer)
    return best[1] if best else None


COMPANY_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "公司")
TRADE_WORDS = ("商贸", "贸易", "副食品", "食品", "粮油", "酒店用品", "商行", "批发")


def name_candidates(name):
    """Ways a dealer's name may appear in a group name: the full name, without the company
    suffix, without the place in front, and without the line of trade."""
    core = name
    for suffix in COMPANY_SUFFIXES:
        if core.endswith(suffix):
            core = core[: -len(suffix)]
            break
    found = {name, core}
    cut = max(core.rfind(mark) for mark in "省市区县")
    # The place in front: up to the last 省/市/区/县, or (「上海沪联」) a two-character city name.
    cores = [core[cut + 1:]] if 0 <= cut < len(core) - 2 else [core, core[2:]] if len(core) >= 4 else [core]
    for core in cores:
        found.add(core)
        changed = True
        while changed:
            changed = False
            for word in TRADE_WORDS:
                if core.endswith(word) and len(core) - len(word) >= 2:
                    core = core[: -len(word)]
                    found.add(core)
                    changed = True
    return {c for c in found if len(c) >= 2}


def list_groups(*, q=None, owner=None, mapped=None, status="active", dealer_id=None, page=1,
                page_size=GROUP_PAGE_SIZE):
    query = select(CustomerGroup)
    if status:
        query = query.where(CustomerGroup.status == status)
    if owner:
        query = query.where(CustomerGroup.owner_userid == owner)
    if mapped == "yes":
        query = query.where(CustomerGroup.dealer_id.is_not(None))
    elif mapped == "no":
        query = query.where(CustomerGroup.dealer_id.is_(None))
    if dealer_id:
        query = query.where(CustomerGroup.dealer_id == dealer_id)
    if q:
        query = query.where(CustomerGroup.name.contains(q, autoescape=True))
    total = db.session.execute(query.with_only_columns(func.count()).order_by(None)).scalar_one()
    rows = db.session.execute(
        query.order_by(CustomerGroup.owner_userid, CustomerGroup.name, CustomerGroup.id)
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


def map_group(*, staff, group_id, dealer_code):
    """Map a group to a dealer (by code; empty unmaps). Audited. 404 for an unknown group,
    422 for an unknown dealer code."""
    code = inputs.text(dealer_code, field="dealer", label="经销商编码", max_len=32, required=False)
    with write_transaction() as session:
        group = session.get(CustomerGroup, group_id)
        if group is None:
            raise NotFound("客户群不存在", "group_not_found")
        dealer = None
        if code:
            dealer = session.execute(select(Dealer).where(func.upper(Dealer.code) == code.upper())).scalar_one_or_none()
            if dealer is None:
                raise inputs.invalid("dealer", f"经销商编码 {code} 不存在")
        before = group.dealer.code if group.dealer else None
        after = dealer.code if dealer else None
        if before == after:
            return group
        group.dealer_id = dealer.id if dealer else None
        group.updated_at = utcnow()
        audit.record(session, actor=staff, action="groups.map", entity_type="customer_group", entity_id=group.id,
                     label=group.name, before={"dealer": before}, after={"dealer": after})
    return group


def owner_names(session, userids):
    rows = session.execute(select(Staff.wecom_userid, Staff.name).where(Staff.wecom_userid.in_(list(userids)))).all()
    return dict(rows)


# --- campaigns: creating ------------------------------------------------------------------

def _bytes(text):
    return len((text or "").encode("utf-8"))


def _checked_url(value, *, field, label, required=True):
    url = inputs.text(value, field=field, label=label, max_len=1024, required=required)
    if url and not url.startswith(("https://", "http://")):
        raise inputs.invalid(field, f"{label}应以 http:// 或 https:// 开头")
    return url


def parse_attachments(*, links, miniprograms, images, cover=None, material_ids=None):
    """Attachments from the console form: `links` and `miniprograms` as lines
    (「标题 | 链接 | 描述」, 「标题 | 页面路径」), `images` as (filename, bytes) pairs, `cover` the
    mini-program cards' cover image, `material_ids` published materials from the library (their
    picture, video, file, link or card, copied so the campaign keeps them even if the material
    changes later). Returns dicts; 422 with a Chinese message when wrong."""
    from app.storage.images import inspect_image

    result = []
    max_bytes = current_app.config["UPLOAD_MAX_BYTES"]
    max_pixels = current_app.config["UPLOAD_MAX_PIXELS"]

    def image(data, field):
        if not data:
            raise inputs.invalid(field, "上传的图片是空的")
        if len(data) > max_bytes:
            raise inputs.invalid(field, f"图片不能超过 {max_bytes // (1024 * 1024)} MB")
        content_type, _, _ = inspect_image(data, max_pixels=max_pixels)
        if content_type not in ("image/jpeg", "image/png"):
            raise inputs.invalid(field, "企业微信群发图片只支持 JPG 或 PNG")
        return content_type

    for name, data in images:
        result.append({"kind": "image", "data": data, "content_type": image(data, "images"), "title": name[:128]})
    result += [_material_attachment(material_id, image) for material_id in (material_ids or [])]
    for n, line in enumerate(_lines(links), 1):
        parts = [p.strip() for p in line.split("|")]
        title = inputs.text(parts[0] if parts else "", field="links", label=f"第 {n} 个链接的标题", max_len=128)
        if _bytes(title) > LINK_TITLE_MAX_BYTES:
            raise inputs.invalid("links", f"第 {n} 个链接的标题超过 {LINK_TITLE_MAX_BYTES} 字节")
        url = _checked_url(parts[1] if len(parts) > 1 else "", field="links", label=f"第 {n} 个链接的地址")
        desc = parts[2] if len(parts) > 2 else ""
        if _bytes(desc) > LINK_DESC_MAX_BYTES:
            raise inputs.invalid("links", f"第 {n} 个链接的描述超过 {LINK_DESC_MAX_BYTES} 字节")
        result.append({"kind": "link", "title": title, "url": url, "description": desc or None})
    mp_lines = _lines(miniprograms)
    cover_type = None
    if mp_lines:
        if not cover or not cover[1]:
            raise inputs.invalid("cover", "小程序卡片需要一张封面图（建议 520×416）")
        cover_type = image(cover[1], "cover")
    appid = current_app.config["WECHAT_APP_ID"]
    for n, line in enumerate(mp_lines, 1):
        parts = [p.strip() for p in line.split("|")]
        title = inputs.text(parts[0] if parts else "", field="miniprograms", label=f"第 {n} 个小程序卡片的标题",
                            max_len=64)
        if _bytes(title) > MINIPROGRAM_TITLE_MAX_BYTES:
            raise inputs.invalid("miniprograms", f"第 {n} 个小程序卡片的标题超过 {MINIPROGRAM_TITLE_MAX_BYTES} 字节")
        page = inputs.text(parts[1] if len(parts) > 1 else "", field="miniprograms",
                           label=f"第 {n} 个小程序卡片的页面路径", max_len=256)
        result.append({"kind": "miniprogram", "title": title, "page": page, "appid": appid, "data": cover[1],
                       "content_type": cover_type})
    if len(result) > MAX_ATTACHMENTS:
        raise inputs.invalid("attachments", f"附件最多 {MAX_ATTACHMENTS} 个（图片、链接、小程序卡片合计），现在是 {len(result)} 个")
    return result


# media/upload's limits (企业微信「上传临时素材」): images 10 MB (JPG/PNG), videos 10 MB (MP4), files 20 MB.
WECOM_MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "video": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}


def parse_material_ids(text):
    """Material ids typed as numbers separated by spaces or commas (at most MAX_ATTACHMENTS)."""
    words = (text or "").replace("，", " ").replace(",", " ").split()
    if len(words) > MAX_ATTACHMENTS:
        raise inputs.invalid("materials", f"附件最多 {MAX_ATTACHMENTS} 个")
    return list(dict.fromkeys(
        inputs.integer(w, field="materials", label="素材编号", minimum=1, maximum=2**53) for w in words))


def _material_attachment(material_id, check_image):
    """A library material as an attachment dict (what WeCom's add_msg_template takes)."""
    from app.materials.attachments import campaign_attachment

    try:
        material = campaign_attachment(material_id)
    except NotFound:
        raise inputs.invalid("materials", f"素材编号 {material_id} 不存在") from None
    except DomainError as exc:
        raise inputs.invalid("materials", exc.message) from None
    data = material.media_bytes()
    limit = WECOM_MEDIA_MAX_BYTES.get(material.msgtype)
    if limit and data and len(data) > limit:
        raise inputs.invalid("materials", f"素材“{material.title}”超过企业微信群发的大小上限 {limit // (1024 * 1024)} MB")
    if material.msgtype == "image":
        return {"kind": "image", "data": data, "content_type": check_image(data, "materials"),
                "title": material.title[:128]}
    if material.msgtype in ("video", "file"):
        return {"kind": material.msgtype, "data": data, "content_type": material.media_content_type,
                "title": (material.media_name or material.title)[:128]}
    if material.msgtype == "link":
        return {"kind": "link", "title": _clip_bytes(material.title, LINK_TITLE_MAX_BYTES), "url": material.url,
                "description": _clip_bytes(material.desc, LINK_DESC_MAX_BYTES) or None}
    return {"kind": "miniprogram", "title": _clip_bytes(material.title, MINIPROGRAM_TITLE_MAX_BYTES),
            "page": material.page, "appid": material.appid or current_app.config["WECHAT_APP_ID"], "data": data,
            "content_type": check_image(data, "materials")}


def _clip_bytes(text, limit):
    encoded = (text or "").encode("utf-8")
    return encoded[:limit].decode("utf-8", errors="ignore") if len(encoded) > limit else (text or "")


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def create_campaign(*, staff, title, text, audience, attachments):
    """A draft campaign: `audience` from `app.audience.service.parse`/`parse_form`,
    `attachments` from `parse_attachments`. Image bytes are stored first (a failed transaction
    deletes them again). Audited."""
    from app.storage import get_storage

    title = inputs.text(title, field="title", label="标题", max_len=64)
    text = inputs.text(text, field="text", label="文字内容", max_len=4000, required=not attachments)
    if _bytes(text) > TEXT_MAX_BYTES:
        raise inputs.invalid("text", f"文字内容不能超过 {TEXT_MAX_BYTES} 字节（约 1300 个汉字）")
    if audience.empty:
        raise inputs.invalid("audience", "请选择受众")
    storage = get_storage()
    stored = []
    try:
        for item in attachments:
            if item.get("data"):
                item["storage_key"] = storage.put(item["data"], item["content_type"], "campaigns")
                stored.append(item["storage_key"])
        with write_transaction() as session:
            now = utcnow()
            campaign = Campaign(title=title, text=text, status="draft", created_by_id=staff.id, created_at=now,
                                updated_at=now)
            session.add(campaign)
            session.flush()
            for position, item in enumerate(attachments, 1):
                session.add(CampaignAttachment(
                    campaign_id=campaign.id, position=position, kind=item["kind"], title=item.get("title"),
                    url=item.get("url"), description=item.get("description"), appid=item.get("appid"),
                    page=item.get("page"), storage_key=item.get("storage_key"), content_type=item.get("content_type"),
                ))
            audiences.save(session, "campaign", campaign.id, audience)
            audit.record(session, actor=staff, action="campaign.create", entity_type="campaign", entity_id=campaign.id,
                         label=title, after={"title": title, "audience": audience.to_dict(),
                                             "attachments": len(attachments)})
    except BaseException:
        for key in stored:
            try:
                storage.delete(key)
            except Exception:
                log.exception("could not delete stored campaign image %s", key)
        raise
    return campaign


def get_campaign(campaign_id):
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("群发活动不存在", "campaign_not_found")
    return campaign


def list_campaigns(*, status=None, page=1, page_size=CAMPAIGN_PAGE_SIZE):
    query = select(Campaign)
    if status:
        query = query.where(Campaign.status == status)
    total = db.session.execute(query.with_only_columns(func.count()).order_by(None)).scalar_one()
    rows = db.session.execute(query.order_by(Campaign.id.desc()).limit(page_size).offset((page - 1) * page_size)
                              ).scalars().all()
    return rows, total


# --- the plan -----------------------------------------------------------------------------

def compute_plan(session, campaign):
    """What sending `campaign` now would do: for each dealer in its audience, its mapped active
    groups, grouped by owner (sender). Returns {"senders": {userid: [entry]}, "dropped": [entry],
    "dealers": n, "dealers_without_groups": [Dealer], "limit": n}; an entry is
    {"group", "dealer", "remaining"} (+ "reason" when dropped)."""
    audience = audiences.load("campaign", campaign.id, session=session)
    dealer_ids = audiences.dealer_ids(audience, session=session, statuses=("active",))
    groups = session.execute(
        select(CustomerGroup).where(CustomerGroup.dealer_id.in_(dealer_ids), CustomerGroup.status == "active")
        .order_by(CustomerGroup.owner_userid, CustomerGroup.id)
    ).scalars().all() if dealer_ids else []
    dealers = {d.id: d for d in session.execute(select(Dealer).where(Dealer.id.in_(dealer_ids))).scalars()} \
        if dealer_ids else {}
    remaining = remaining_this_month(session, [g.id for g in groups], exclude_campaign_id=campaign.id)
    limit = monthly_limit()
    senders, dropped = defaultdict(list), []
    for group in groups:
        entry = {"group": group, "dealer": dealers.get(group.dealer_id), "remaining": remaining[group.id]}
        if group.owner_status != 0:
            dropped.append({**entry, "reason": "群主已离职，需在企业微信后台分配继承后再发"})
        elif remaining[group.id] <= 0:
            dropped.append({**entry, "reason": f"本月群发次数已用完（每群每月上限 {limit} 条）"})
        elif len(senders[group.owner_userid]) >= MAX_CHATS_PER_TASK:
            dropped.append({**entry, "reason": f"同一群主一次最多 {MAX_CHATS_PER_TASK} 个群"})
        else:
            senders[group.owner_userid].append(entry)
    with_groups = {g.dealer_id for g in groups}
    return {
        "senders": dict(senders), "dropped": dropped, "dealers": len(dealer_ids), "limit": limit,
        "dealers_without_groups": [d for i, d in dealers.items() if i not in with_groups],
    }


def _freeze_plan(session, campaign, plan):
    now = utcnow()
    staff_ids = dict(session.execute(
        select(Staff.wecom_userid, Staff.id).where(Staff.wecom_userid.in_(list(plan["senders"])))).all())
    for userid, entries in plan["senders"].items():
        sender = CampaignSender(campaign_id=campaign.id, sender_userid=userid, staff_id=staff_ids.get(userid),
                                status="pending", updated_at=now)
        session.add(sender)
        session.flush()
        for entry in entries:
            session.add(CampaignGroup(campaign_id=campaign.id, sender_id=sender.id, group_id=entry["group"].id,
                                      dealer_id=entry["group"].dealer_id, status="planned", updated_at=now))
    for entry in plan["dropped"]:
        session.add(CampaignGroup(campaign_id=campaign.id, group_id=entry["group"].id,
                                  dealer_id=entry["group"].dealer_id, status="dropped", reason=entry["reason"],
                                  updated_at=now))


# --- scheduling, cancelling, sending --------------------------------------------------------

def _lock_campaign(session, campaign_id):
    campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).scalar_one_or_none()
    if campaign is None:
        raise NotFound("群发活动不存在", "campaign_not_found")
    return campaign


def _status_error(campaign, doing):
    return DomainError("campaign_state", f"活动当前为「{CAMPAIGN_STATUS_LABELS[campaign.status]}」，不能{doing}", 409)


def schedule_campaign(*, staff, campaign_id, at):
    """Send at `at` (aware datetime, in the future). Draft or scheduled campaigns only. Audited."""
    if at <= utcnow() + timedelta(seconds=30):
        raise inputs.invalid("scheduled_at", "定时发送的时间应晚于现在")
    with write_transaction() as session:
        campaign = _lock_campaign(session, campaign_id)
        if campaign.status not in ("draft", "scheduled"):
            raise _status_error(campaign, "定时发送")
        _require_plannable(session, campaign)
        before = {"status": campaign.status, "scheduled_at": campaign.scheduled_at}
        campaign.status, campaign.scheduled_at, campaign.updated_at = "scheduled", at, utcnow()
        audit.record(session, actor=staff, action="campaign.schedule", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, before=before, after={"status": "scheduled", "scheduled_at": at})
    from app import jobs

    try:  # RQ's scheduler sends it on time; the periodic tick is the fallback
        jobs.enqueue_in((at - utcnow()).total_seconds() + 1, send_campaign, campaign.id, queue=JOB_QUEUE,
                        timeout=JOB_TIMEOUT)
    except Exception as exc:
        log.warning("could not book campaign %s on the scheduler (%s); the periodic tick will send it",
                    campaign.id, exc.__class__.__name__)
    return campaign


def _require_plannable(session, campaign):
    plan = compute_plan(session, campaign)
    if not plan["senders"]:
        reason = "受众中的经销商没有已对应的客户群" if not plan["dropped"] else "受众的客户群本月都已不能再接收群发"
        raise DomainError("nothing_to_send", f"没有可以发送的客户群：{reason}", 422)
    return plan


def send_now(*, staff, campaign_id):
    """Send at once: the plan is frozen and the WeCom tasks are created (by a job on the low
    queue; in-process without Redis). 409 unless draft or scheduled; 422 when no group can receive it."""
    with write_transaction() as session:
        campaign = _lock_campaign(session, campaign_id)
        if campaign.status not in ("draft", "scheduled"):
            raise _status_error(campaign, "发送")
        _require_plannable(session, campaign)
        campaign.scheduled_at, campaign.updated_at = utcnow(), utcnow()
        if campaign.status == "draft":
            campaign.status = "scheduled"
        audit.record(session, actor=staff, action="campaign.send", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, after={"status": "sending"})
    from app import jobs

    jobs.enqueue(send_campaign, campaign.id, queue=JOB_QUEUE, timeout=JOB_TIMEOUT)
    return get_campaign(campaign_id)


def cancel_campaign(*, staff, campaign_id, reason=None):
    """Cancel: a draft or scheduled campaign is simply not sent. A campaign being sent has its
    tasks the reps have not sent yet stopped with cancel_groupmsg_send (WeCom cannot recall
    what was already sent; those groups stay 已发送). Audited."""
    with write_transaction() as session:
        campaign = _lock_campaign(session, campaign_id)
        if campaign.status in ("draft", "scheduled"):
            before = campaign.status
            campaign.status, campaign.cancelled_at, campaign.updated_at = "cancelled", utcnow(), utcnow()
            audit.record(session, actor=staff, action="campaign.cancel", entity_type="campaign",
                         entity_id=campaign.id, label=campaign.title, before={"status": before},
                         after={"status": "cancelled"}, reason=reason)
            return {"stopped": 0, "failed": 0}
        if campaign.status != "sending":
            raise _status_error(campaign, "取消")
        senders = session.execute(select(CampaignSender).where(
            CampaignSender.campaign_id == campaign.id, CampaignSender.status.in_(("pending", "waiting")))
        ).scalars().all()
        to_stop = [(s.id, s.msgid) for s in senders if s.status == "waiting"]
        for sender in senders:
            if sender.status == "pending":
                _set_sender_groups(session, sender.id, "cancelled", "活动已取消", from_statuses=("planned",))
                sender.status, sender.updated_at = "cancelled", utcnow()
    from app.integrations.wechat import WeChatError

    stopped = failed = 0
    for sender_id, msgid in to_stop:
        try:
            _gateway().cancel_groupmsg_send(msgid)
        except WeChatError as exc:
            failed += 1
            log.warning("cancel_groupmsg_send %s failed: %s", msgid, exc)
            continue
        with write_transaction() as session:
            sender = session.get(CampaignSender, sender_id)
            if sender.status == "waiting":
                sender.status, sender.updated_at = "cancelled", utcnow()
                _set_sender_groups(session, sender_id, "cancelled", "活动已取消（未确认的任务已停止）",
                                   from_statuses=("waiting",))
                stopped += 1
    with write_transaction() as session:
        campaign = _lock_campaign(session, campaign_id)
        audit.record(session, actor=staff, action="campaign.cancel", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, before={"status": "sending"},
                     after={"stopped_tasks": stopped, "stop_failed": failed}, reason=reason)
        _finish_if_done(session, campaign)
    return {"stopped": stopped, "failed": failed}


def _set_sender_groups(session, sender_id, status, reason, *, from_statuses):
    session.execute(
        update(CampaignGroup).where(CampaignGroup.sender_id == sender_id, CampaignGroup.status.in_(from_statuses))
        .values(status=status, reason=reason, updated_at=utcnow())
    )


def _finish_if_done(session, campaign):
    open_senders = session.execute(select(func.count()).select_from(CampaignSender).where(
        CampaignSender.campaign_id == campaign.id,
        CampaignSender.status.in_(("pending", "creating", "waiting")))).scalar_one()
    if campaign.status == "sending" and open_senders == 0:
        campaign.status, campaign.finished_at, campaign.updated_at = "done", utcnow(), utcnow()


def send_campaign(campaign_id):
    """The job: freeze the plan of a due campaign (scheduled, time reached), announce it to the
    internal group, and create one WeCom task per sender. Safe to run twice: only one run moves
    the campaign to `sending`, and each sender is claimed before its task is created."""
    now = utcnow()
    with write_transaction() as session:
        campaign = _lock_campaign(session, campaign_id)
        if campaign.status == "scheduled" and campaign.scheduled_at is not None and campaign.scheduled_at <= now:
            plan = compute_plan(session, campaign)
            _freeze_plan(session, campaign, plan)
            campaign.status, campaign.sent_at, campaign.updated_at = "sending", now, now
            publish(session, "campaign.sending", campaign=campaign, plan=plan)
            if not plan["senders"]:
                _finish_if_done(session, campaign)
        elif campaign.status != "sending":
            return "skipped"
    return create_tasks(campaign_id)


MEDIA_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "video/mp4": ".mp4", "application/pdf": ".pdf",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx"}


def _media_id(attachment):
    """A WeCom media_id for an image, mini-program cover, video or file: uploaded once (media/upload
    with its type), reused for 60 hours."""
    if attachment.media_id and attachment.media_uploaded_at and attachment.media_uploaded_at > utcnow() - MEDIA_REUSE:
        return attachment.media_id
    from app.storage import get_storage

    data = get_storage().get(attachment.storage_key)
    extension = MEDIA_EXTENSIONS.get(attachment.content_type, ".jpg")
    media_type = attachment.kind if attachment.kind in ("video", "file") else "image"
    name = f"campaign-{attachment.campaign_id}-{attachment.position}{extension}"
    if attachment.kind == "file" and attachment.title:
        name = attachment.title
    media_id = _gateway().upload_media(data, name, attachment.content_type, media_type)
    with write_transaction() as session:
        row = session.get(CampaignAttachment, attachment.id)
        row.media_id, row.media_uploaded_at = media_id, utcnow()
    attachment.media_id = media_id
    return media_id


def message_body(campaign, sender_userid, chat_ids):
    """The add_msg_template body for one sender, as documented (chat_type "group")."""
    body = {"chat_type": "group", "sender": sender_userid, "chat_id_list": list(chat_ids), "allow_select": False}
    if campaign.text:
        body["text"] = {"content": campaign.text}
    attachments = []
    for a in campaign.attachments:
        if a.kind == "image":
            attachments.append({"msgtype": "image", "image": {"media_id": _media_id(a)}})
        elif a.kind == "link":
            link = {"title": a.title, "url": a.url}
            if a.description:
                link["desc"] = a.description
            attachments.append({"msgtype": "link", "link": link})
        elif a.kind == "miniprogram":
            attachments.append({"msgtype": "miniprogram", "miniprogram": {
                "title": a.title, "pic_media_id": _media_id(a), "appid": a.appid, "page": a.page}})
        elif a.kind in ("video", "file"):
            attachments.append({"msgtype": a.kind, a.kind: {"media_id": _media_id(a)}})
    if attachments:
        body["attachments"] = attachments
    return body


def create_tasks(campaign_id):
    """Create the WeCom task of every pending sender of a campaign being sent. A sender WeCom
    refuses is `failed` with its errcode (its groups too); the others go on."""
    from app.integrations.wechat import WeChatError

    results = {}
    sender_ids = db.session.execute(select(CampaignSender.id).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "pending").order_by(CampaignSender.id)
    ).scalars().all()
    db.session.rollback()
    for sender_id in sender_ids:
        with write_transaction() as session:  # claim: only one worker creates this task
            claimed = session.execute(
                update(CampaignSender).where(CampaignSender.id == sender_id, CampaignSender.status == "pending")
                .values(status="creating", attempts=CampaignSender.attempts + 1, updated_at=utcnow())
            ).rowcount
        if not claimed:
            continue
        campaign = db.session.get(Campaign, campaign_id)
        sender = db.session.get(CampaignSender, sender_id)
        chats = dict(db.session.execute(
            select(CustomerGroup.chat_id, CampaignGroup.id).join(CampaignGroup, CampaignGroup.group_id == CustomerGroup.id)
            .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "planned")
        ).all())
        userid = sender.sender_userid
        db.session.rollback()
        try:
            answer = _gateway().add_msg_template(message_body(campaign, userid, list(chats)))
        except WeChatError as exc:
            results[userid] = "failed"
            _record_task_failure(sender_id, exc)
            continue
        except Exception as exc:  # storage gone, a bug: the sender can be retried
            log.exception("creating the group-message task of sender %s failed", sender_id)
            results[userid] = "failed"
            _record_task_failure(sender_id, exc)
            continue
        results[userid] = "waiting"
        _record_task_created(campaign_id, sender_id, answer, chats)
    return results


def _record_task_failure(sender_id, exc):
    errcode = getattr(exc, "errcode", None)
    errmsg = getattr(exc, "errmsg", None) or f"内部错误：{exc.__class__.__name__}"
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.status, sender.errcode, sender.errmsg, sender.updated_at = "failed", errcode, str(errmsg)[:500], utcnow()
        _set_sender_groups(session, sender_id, "failed",
                           f"创建群发任务失败（{errcode if errcode is not None else '无错误码'}：{str(errmsg)[:120]}）",
                           from_statuses=("planned",))
        _finish_if_done(session, session.get(Campaign, sender.campaign_id))


def _record_task_created(campaign_id, sender_id, answer, chats):
    now = utcnow()
    refused = set(answer.get("fail_list") or [])
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.status, sender.msgid, sender.task_created_at = "waiting", answer.get("msgid"), now
        sender.errcode = sender.errmsg = None
        sender.updated_at = now
        for chat_id, row_id in chats.items():
            row = session.get(CampaignGroup, row_id)
            if chat_id in refused:
                row.status, row.reason = "failed", "企业微信拒绝向该群创建群发（fail_list）"
            else:
                row.status, row.reason = "waiting", None
            row.updated_at = now
        _remind(session, sender, session.get(Campaign, campaign_id))


STUCK_AFTER = timedelta(minutes=10)


def recover_stuck_senders(campaign_id):
    """A sender left `creating` (its worker died between asking WeCom for the task and writing
    the answer down) is looked up in WeCom: get_groupmsg_list_v2 lists the corp's group messages
    created since the claim, get_groupmsg_task says whose each is; a task for this sender with
    this campaign's text, not recorded by another row, is adopted. Otherwise WeCom never
    created it and the sender goes back to `pending`, to be created again."""
    from app.integrations.wechat import WeChatError

    now = utcnow()
    stuck = db.session.execute(select(CampaignSender).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "creating",
        CampaignSender.updated_at < now - STUCK_AFTER)).scalars().all()
    if not stuck:
        return {}
    campaign = db.session.get(Campaign, campaign_id)
    text = campaign.text or ""
    work = [(s.id, s.sender_userid, s.updated_at) for s in stuck]
    known = set(db.session.execute(select(CampaignSender.msgid).where(CampaignSender.msgid.is_not(None))).scalars())
    db.session.rollback()
    gateway, outcome = _gateway(), {}
    for sender_id, userid, claimed_at in work:
        try:
            found = None
            since = claimed_at - timedelta(minutes=2)
            for message in gateway.list_group_messages(since.timestamp(), now.timestamp()):
                if message.get("msgid") in known or ((message.get("text") or {}).get("content") or "") != text:
                    continue
                if any(t.get("userid") == userid for t in gateway.get_groupmsg_task(message["msgid"])):
                    found = message["msgid"]
                    break
        except WeChatError as exc:
            log.warning("looking up the task of stuck sender %s failed: %s", sender_id, exc)
            continue
        if found:
            known.add(found)
            chats = dict(db.session.execute(
                select(CustomerGroup.chat_id, CampaignGroup.id)
                .join(CampaignGroup, CampaignGroup.group_id == CustomerGroup.id)
                .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "planned")).all())
            db.session.rollback()
            _record_task_created(campaign_id, sender_id, {"msgid": found, "fail_list": []}, chats)
            outcome[userid] = "adopted"
        else:
            with write_transaction() as session:
                session.execute(update(CampaignSender).where(
                    CampaignSender.id == sender_id, CampaignSender.status == "creating")
                    .values(status="pending", updated_at=utcnow()))
            outcome[userid] = "pending"
    return outcome


def retry_sender(*, staff, sender_id):
    """Try again a sender whose task WeCom refused: its failed groups are planned again (those
    at this month's limit now are dropped), then its task is created. Audited."""
    with write_transaction() as session:
        sender = session.execute(select(CampaignSender).where(CampaignSender.id == sender_id).with_for_update()
                                 ).scalar_one_or_none()
        if sender is None:
            raise NotFound("发送人不存在", "sender_not_found")
        campaign = _lock_campaign(session, sender.campaign_id)
        if sender.status != "failed":
            raise DomainError("sender_state", "只有创建任务失败的发送人可以重试", 409)
        rows = session.execute(select(CampaignGroup).where(CampaignGroup.sender_id == sender.id,
                                                           CampaignGroup.status == "failed")).scalars().all()
        remaining = remaining_this_month(session, [r.group_id for r in rows], exclude_campaign_id=campaign.id)
        now = utcnow()
        for row in rows:
            if remaining[row.group_id] <= 0:
                row.status, row.reason = "dropped", f"本月群发次数已用完（每群每月上限 {monthly_limit()} 条）"
            else:
                row.status, row.reason = "planned", None
            row.updated_at = now
        sender.status, sender.updated_at = "pending", now
        campaign.status, campaign.finished_at = "sending", None
        audit.record(session, actor=staff, action="campaign.retry", entity_type="campaign", entity_id=campaign.id,
                     label=campaign.title, after={"sender": sender.sender_userid}, reason=sender.errmsg)
        campaign_id = campaign.id
    if not any(r.status == "planned" for r in rows):
        with write_transaction() as session:
            sender = session.get(CampaignSender, sender_id)
            sender.status = "failed"
            _finish_if_done(session, session.get(Campaign, campaign_id))
        raise DomainError("nothing_to_send", "该发送人的群本月都已不能再接收群发", 422)
    from app import jobs

    jobs.enqueue(create_tasks, campaign_id, queue=JOB_QUEUE, timeout=JOB_TIMEOUT)


# --- results and reminders ------------------------------------------------------------------

def poll_campaign(campaign_id):
    """Ask WeCom how each waiting task went and update its groups: get_groupmsg_task (did the rep
    send?) then, for a sent task, get_groupmsg_send_result (per group). Failures to ask are
    logged and retried on the next poll."""
    from app.integrations.wechat import WeChatError

    senders = db.session.execute(select(CampaignSender).where(
        CampaignSender.campaign_id == campaign_id, CampaignSender.status == "waiting",
        CampaignSender.msgid.is_not(None))).scalars().all()
    work = [(s.id, s.msgid, s.sender_userid) for s in senders]
    db.session.rollback()
    gateway = _gateway()
    outcome = {}
    for sender_id, msgid, userid in work:
        try:
            tasks = {t.get("userid"): t for t in gateway.get_groupmsg_task(msgid)}
            task = tasks.get(userid)
            sent = task is not None and int(task.get("status") or 0) == 2
            results = gateway.get_groupmsg_send_result(msgid, userid) if sent else []
        except WeChatError as exc:
            log.warning("polling group-message task %s failed: %s", msgid, exc)
            outcome[userid] = "error"
            continue
        outcome[userid] = _record_results(sender_id, task if sent else None, results)
    with write_transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        _finish_if_done(session, campaign)
        for sender in session.execute(select(CampaignSender).where(
                CampaignSender.campaign_id == campaign_id, CampaignSender.status == "waiting")).scalars():
            _remind(session, sender, campaign)
    return outcome


def _record_results(sender_id, task, results):
    now = utcnow()
    with write_transaction() as session:
        sender = session.get(CampaignSender, sender_id)
        sender.polled_at = now
        if task is None:
            return "waiting"
        by_chat = {r.get("chat_id"): r for r in results if r.get("chat_id")}
        rows = session.execute(
            select(CampaignGroup, CustomerGroup.chat_id).join(CustomerGroup, CustomerGroup.id == CampaignGroup.group_id)
            .where(CampaignGroup.sender_id == sender_id, CampaignGroup.status == "waiting")
        ).all()
        for row, chat_id in rows:
            result = by_chat.get(chat_id)
            if result is None:
                # Documented: for group tasks only sent records are returned; a group missing
                # after the rep sent was left out by the rep.
                row.status, row.reason, row.result_status = "not_sent", "业务员发送时未包含该群", None
            else:
                code = int(result.get("status") or 0)
                status, reason = RESULT_STATUSES.get(code, ("failed", f"未知的发送状态 {code}"))
                row.status, row.reason, row.result_status = status, reason, code
                if status == "sent":
                    row.sent_at = _timestamp(result.get("send_time")) or now
            row.updated_at = now
        sender.status = "sent"
        sender.sent_at = _timestamp(task.get("send_time")) or now
        sender.updated_at = now
        return "sent"


def _timestamp(value):
    try:
        return datetime.fromtimestamp(int(value), timezone.utc) if value else None
    except (TypeError, ValueError):
        return None


def _remind(session, sender, campaign):
    """A WeCom app message to the rep about an unconfirmed task: when it is created, then every
    CAMPAIGN_REMIND_HOURS, at most CAMPAIGN_MAX_REMINDERS times. One outbox row per reminder
    (dedupe key per campaign, sender and reminder number), so a rerun never reminds twice."""
    config = current_app.config
    now = utcnow()
    if sender.status != "waiting" or sender.reminders >= config["CAMPAIGN_MAX_REMINDERS"]:
        return False
    if sender.reminded_at and sender.reminded_at > now - timedelta(hours=config["CAMPAIGN_REMIND_HOURS"]):
        return False
    count = session.execute(select(func.count()).select_from(CampaignGroup).where(
        CampaignGroup.sender_id == sender.id, CampaignGroup.status == "waiting")).scalar_one()
    from app.notify.rep_alerts import text_message

    first = sender.reminders == 0
    content = (
        f"{'新的' if first else f'第 {sender.reminders} 次提醒：'}客户群群发「{campaign.title}」待你确认：共 {count} 个客户群。"
        "请打开企业微信 → 工作台 → 客户联系 →「群发助手」，确认后发送。"
    )
    outbox.add(session, channel="wecom_app", event="campaign_remind", recipient=sender.sender_userid,
               payload=text_message(content), dedupe_key=f"campaign:{campaign.id}:remind:{sender.id}:{sender.reminders + 1}",
               queue="default", ref_type="campaign", ref_id=campaign.id)
    sender.reminders += 1
    sender.reminded_at = now
    return True


def due_campaigns(now=None):
    """Ids of scheduled campaigns whose time has come, and of campaigns being sent."""
    now = now or utcnow()
    due = db.session.execute(select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
                             .order_by(Campaign.id)).scalars().all()
    sending = db.session.execute(select(Campaign.id).where(Campaign.status == "sending").order_by(Campaign.id)
                                 ).scalars().all()
    return due, sending


# --- reading for the console ------------------------------------------------------------------

def campaign_view(campaign):
    """Everything the detail page shows: the audience in words, and either the live plan (not
    sent yet) or the frozen one with per-sender and per-group states."""
    session = db.session
    audience = audiences.load("campaign", campaign.id, session=session)
    view = {"audience": audience, "audience_text": audiences.describe(audience, session=session),
            "limit": monthly_limit()}
    if campaign.status in ("draft", "scheduled", "cancelled") and not _has_rows(session, campaign.id):
        plan = compute_plan(session, campaign)
        view["plan"] = plan
        view["owner_names"] = owner_names(session, list(plan["senders"]))
        return view
    senders = session.execute(select(CampaignSender).where(CampaignSender.campaign_id == campaign.id)
                              .order_by(CampaignSender.sender_userid)).scalars().all()
    rows = session.execute(select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id)
                           .order_by(CampaignGroup.sender_id, CampaignGroup.id)).scalars().all()
    by_sender = defaultdict(list)
    for row in rows:
        by_sender[row.sender_id].append(row)
    remaining = remaining_this_month(session, [r.group_id for r in rows])
    counts = defaultdict(int)
    for row in rows:
        counts[row.status] += 1
    view.update(senders=senders, by_sender=by_sender, remaining=remaining, counts=dict(counts),
                owner_names=owner_names(session, [s.sender_userid for s in senders]))
    return view


def _has_rows(session, campaign_id):
    return session.execute(select(CampaignGroup.id).where(CampaignGroup.campaign_id == campaign_id).limit(1)
                           ).first() is not None


def dealer_choices():
    return db.session.execute(select(Dealer).where(Dealer.status == "active").order_by(Dealer.code)).scalars().all()
