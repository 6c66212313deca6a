"""Authoring a campaign: its text and attachments checked against what WeCom's
add_msg_template takes, stored as a draft with its audience."""
import logging

from flask import current_app

from app.audience import service as audiences
from app.audit import service as audit
from app.campaigns.models import Campaign, CampaignAttachment
from app.database import write_transaction
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 9
TEXT_MAX_BYTES = 4000  # add_msg_template text.content
LINK_TITLE_MAX_BYTES = 128
LINK_DESC_MAX_BYTES = 512
MINIPROGRAM_TITLE_MAX_BYTES = 64


def _bytes(text):
    return len((text or "").encode("utf-8"))


def _checked_url(value, *, field, label, required=True):
    url = inputs.text(value, field=field, label=label, max_len=1024, required=required)
    if url and not url.startswith(("https://", "http://")):
        raise inputs.invalid(field, f"{label}应以 http:// 或 https:// 开头")
    return url


def check_attachments(*, links, miniprograms, images, cover=None, material_ids=None):
    """A campaign's attachments, checked: `links` as [title, url, description] and
    `miniprograms` as [title, page path] (the parts of one line of the console form each),
    `images` as (filename, bytes) pairs, `cover` the mini-program cards' cover image,
    `material_ids` published materials from the library (their picture, video, file, link or
    card, copied so the campaign keeps them even if the material changes later). Returns dicts; 422 with a Chinese message when wrong."""
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
    for n, parts in enumerate(links, 1):
        title = inputs.text(parts[0] if parts else "", field="links", label=f"第 {n} 个链接的标题", max_len=128)
        if _bytes(title) > LINK_TITLE_MAX_BYTES:
            raise inputs.invalid("links", f"第 {n} 个链接的标题超过 {LINK_TITLE_MAX_BYTES} 字节")
        url = _checked_url(parts[1] if len(parts) > 1 else "", field="links", label=f"第 {n} 个链接的地址")
        desc = parts[2] if len(parts) > 2 else ""
        if _bytes(desc) > LINK_DESC_MAX_BYTES:
            raise inputs.invalid("links", f"第 {n} 个链接的描述超过 {LINK_DESC_MAX_BYTES} 字节")
        result.append({"kind": "link", "title": title, "url": url, "description": desc or None})
    cover_type = None
    if miniprograms:
        if not cover or not cover[1]:
            raise inputs.invalid("cover", "小程序卡片需要一张封面图（建议 520×416）")
        cover_type = image(cover[1], "cover")
    appid = current_app.config["WECHAT_APP_ID"]
    for n, parts in enumerate(miniprograms, 1):
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




def create_campaign(*, staff, title, text, audience, attachments):
    """A draft campaign: `audience` from `app.audience.service.parse`/`parse_form`,
    `attachments` from `check_attachments`. Image bytes are stored first (a failed transaction
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
