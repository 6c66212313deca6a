"""The material library: staff upload and publish materials; dealers browse, download and
share what is addressed to them.

Staff (admin and marketing manage, sales read) go through `create_material`,
`update_material`, `publish_material` and `withdraw_material`; each checks every field
first, then the files (type from the bytes, size by kind), stores the files, and only then
writes the rows, the audience and the audit entry in one transaction. If the transaction
fails the stored files are deleted again, so a failed save leaves neither rows nor files.

A dealer sees a material when it is published, valid today (China date; `valid_from` and
`valid_to` both included, either may be open) and addressed to it by the one audience rule
(`app.audience.service`, evaluated on the dealer's tier and region now). Anything else —
a draft, a withdrawn or expired material, one for other dealers, an unknown id — answers
the same 404, through `get_for_dealer`, the only way a dealer reaches a material.

Campaigns attach materials through `campaign_attachment(material_id)`.
"""
import logging
import re
from dataclasses import dataclass

import nh3
from flask import current_app
from sqlalchemy import and_, delete, func, insert, or_, select

from app.audience import service as audience_service
from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import business_today, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require
from app.materials.models import (
    KIND_LABELS,
    STATUS_LABELS,
    Material,
    MaterialShare,
    MaterialTag,
)
from app.storage import StorageError, get_storage
from app.storage import files as storage_files
from app.storage.backends import EXTENSIONS
from app.storage.images import inspect_image

log = logging.getLogger(__name__)

STAFF_PAGE_SIZE = 30
MAX_TAGS = 10
MAX_TAG_LEN = 16
MAX_BODY_CHARS = 100_000
STORAGE_PREFIX = "materials"

# Which kinds carry which parts.
FILE_KINDS = ("image", "poster", "video", "file")
IMAGE_KINDS = ("image", "poster")
COVER_KINDS = ("video", "file", "article", "link", "miniprogram")

# The mini-program's own page that shows one material (articles, links, and the share
# card of anything that is not a picture). Share paths start with "/" as WeChat requires.
DETAIL_PAGE = "/pages/material/detail"

# HTML an article may contain: text structure, links and pictures; no scripts, styles,
# frames, forms or event handlers (nh3 / ammonia removes whatever is not listed).
ARTICLE_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "h2", "h3", "h4", "ul", "ol", "li",
                "blockquote", "a", "img", "span", "hr", "table", "thead", "tbody", "tr", "th", "td"}
ARTICLE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}

_LINK_URL = re.compile(r"https?://[^\s\"'<>]{1,500}")
_APPID = re.compile(r"wx[0-9a-zA-Z]{16}")
_MP_PATH = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*(?:\?[A-Za-z0-9_.\-=&%]*)?")


@dataclass(frozen=True)
class FileIn:
    """An uploaded file as the console received it: its bytes and the name it had."""

    data: bytes
    filename: str = ""


# --- checking what staff typed ---------------------------------------------------------

def sanitize_article(html):
    """The article's HTML with everything but `ARTICLE_TAGS` removed (links get
    rel="noopener noreferrer"; only http(s) and mailto URLs survive)."""
    return nh3.clean(html or "", tags=ARTICLE_TAGS, attributes=ARTICLE_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer").strip()


def parse_tags(value):
    """Tags from a list or one string separated by spaces, commas or 、: unique, in order."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace("，", ",").replace("、", ",").replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise inputs.invalid("tags", "标签应为列表")
    tags = list(dict.fromkeys(inputs.text(v, field="tags", label="标签", max_len=MAX_TAG_LEN) for v in value))
    if len(tags) > MAX_TAGS:
        raise inputs.invalid("tags", f"标签最多 {MAX_TAGS} 个")
    return tags


def _fields(kind, values):
    """The clean column values for `kind` from what staff typed (422 naming the field)."""
    clean = {
        "title": inputs.text(values.get("title"), field="title", label="标题", max_len=64),
        "summary": inputs.text(values.get("summary"), field="summary", label="简介", max_len=200, required=False),
        "valid_from": inputs.day(values.get("valid_from"), field="valid_from", label="生效日期", required=False),
        "valid_to": inputs.day(values.get("valid_to"), field="valid_to", label="失效日期", required=False),
    }
    if clean["valid_from"] and clean["valid_to"] and clean["valid_to"] < clean["valid_from"]:
        raise inputs.invalid("valid_to", "失效日期不能早于生效日期")
    if kind == "article":
        raw = values.get("body_html")
        if not isinstance(raw, str) or len(raw) > MAX_BODY_CHARS:
            raise inputs.invalid("body_html", f"正文应为不超过 {MAX_BODY_CHARS} 个字符的文字")
        body = sanitize_article(raw)
        if not nh3.clean(body, tags=set()).strip() and "<img" not in body:
            raise inputs.invalid("body_html", "正文不能为空")
        clean["body_html"] = body
    if kind == "link":
        url = inputs.text(values.get("link_url"), field="link_url", label="链接地址", max_len=512)
        if not _LINK_URL.fullmatch(url):
            raise inputs.invalid("link_url", "链接地址应以 http:// 或 https:// 开头")
        clean["link_url"] = url
    if kind == "miniprogram":
        own = current_app.config["WECHAT_APP_ID"]
        appid = inputs.text(values.get("mp_appid"), field="mp_appid", label="小程序 AppID", max_len=32,
                            required=False) or own
        if appid != own and not _APPID.fullmatch(appid):
            raise inputs.invalid("mp_appid", "小程序 AppID 应为 wx 开头的 18 位字符（留空即本品牌小程序）")
        path = inputs.text(values.get("mp_path"), field="mp_path", label="小程序页面路径", max_len=256).lstrip("/")
        if not _MP_PATH.fullmatch(path):
            raise inputs.invalid("mp_path", "页面路径应形如 pages/product/detail?id=12（字母、数字、/、_、-，可带参数）")
        clean["mp_appid"], clean["mp_path"] = appid, path
    return clean


# --- checking and storing files ------------------------------------------------------

@dataclass
class _Checked:
    data: bytes
    content_type: str
    filename: str
    width: int | None = None
    height: int | None = None


def _file_name(upload, content_type):
    """A download name: the uploaded name without any directory, with the extension the
    bytes say (a PDF named report.docx downloads as report.pdf)."""
    ext = EXTENSIONS.get(content_type, "")
    base = re.split(r"[\\/]", upload.filename or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"]", "", base).rsplit(".", 1)[0].strip()[:100] or "material"
    return base + ext


def _check_image(upload, *, what):
    config = current_app.config
    if not upload.data:
        raise DomainError("empty_file", f"{what}文件是空的", 422)
    if len(upload.data) > config["MATERIAL_IMAGE_MAX_BYTES"]:
        raise storage_files.too_large(what, config["MATERIAL_IMAGE_MAX_BYTES"])
    content_type, width, height = inspect_image(upload.data, max_pixels=config["UPLOAD_MAX_PIXELS"])
    return _Checked(upload.data, content_type, _file_name(upload, content_type), width, height)


def _check_main_file(kind, upload):
    config = current_app.config
    if kind in IMAGE_KINDS:
        return _check_image(upload, what="图片")
    if not upload.data:
        raise DomainError("empty_file", "上传的文件是空的", 422)
    if kind == "video":
        if len(upload.data) > config["MATERIAL_VIDEO_MAX_BYTES"]:
            raise storage_files.too_large("视频", config["MATERIAL_VIDEO_MAX_BYTES"])
        content_type = storage_files.inspect_video(upload.data)
    else:
        if len(upload.data) > config["MATERIAL_FILE_MAX_BYTES"]:
            raise storage_files.too_large("文件", config["MATERIAL_FILE_MAX_BYTES"])
        content_type = storage_files.inspect_document(upload.data)
    return _Checked(upload.data, content_type, _file_name(upload, content_type))


def _check_files(kind, *, file, cover, creating):
    if file is not None and kind not in FILE_KINDS:
        raise inputs.invalid("file", f"{KIND_LABELS[kind]}不需要上传文件")
    if cover is not None and kind not in COVER_KINDS:
        raise inputs.invalid("cover", f"{KIND_LABELS[kind]}不需要封面图")
    if creating and kind in FILE_KINDS and file is None:
        raise inputs.invalid("file", f"请上传{KIND_LABELS[kind]}文件")
    if creating and kind == "miniprogram" and cover is None:
        raise inputs.invalid("cover", "小程序卡片需要封面图（建议 5:4，如 500×400）")
    main = _check_main_file(kind, file) if file is not None else None
    cover_checked = _check_image(cover, what="封面图") if cover is not None else None
    return main, cover_checked


class _Stored:
    """Keys put into storage during one save; `undo` deletes them again."""

    def __init__(self):
        self.keys = []

    def put(self, data, content_type):
        try:
            key = get_storage().put(data, content_type, STORAGE_PREFIX)
        except StorageError:
            log.exception("storing a material file failed")
            self.undo()
            raise DomainError("storage_unavailable", "文件存储暂时不可用，请稍后重试", 503) from None
        self.keys.append(key)
        return key

    def undo(self):
        _delete_quietly(self.keys)
        self.keys = []


def _delete_quietly(keys):
    storage = get_storage()
    for key in keys:
        if key:
            try:
                storage.delete(key)
            except Exception:
                log.exception("could not delete stored material file %s", key)


def _store_files(main, cover, stored):
    """Column values for the stored main file, cover and the thumbnail made from the picture."""
    values = {}
    picture = None
    if main is not None:
        values.update(file_key=stored.put(main.data, main.content_type), file_name=main.filename,
                      file_content_type=main.content_type, file_size=len(main.data),
                      width=main.width, height=main.height)
        if main.width is not None:
            picture = main.data
    if cover is not None:
        values["cover_key"] = stored.put(cover.data, cover.content_type)
        picture = cover.data
    if picture is not None:
        thumb, width, height = storage_files.make_thumbnail(picture, max_side=current_app.config["MATERIAL_THUMBNAIL_PX"])
        values.update(thumb_key=stored.put(thumb, "image/jpeg"), thumb_width=width, thumb_height=height)
    return values


# --- staff: create, edit, publish, withdraw -------------------------------------------

def _audience(value):
    if isinstance(value, audience_service.Audience):
        if value.empty:
            raise inputs.invalid("audience", "请选择受众：全部经销商，或按等级、地区、指定经销商选择")
        return value
    return audience_service.parse(value)


def _audit_values(material, tags, audience, session):
    return {
        "kind": material.kind, "title": material.title, "summary": material.summary, "tags": "、".join(tags),
        "valid_from": material.valid_from, "valid_to": material.valid_to,
        "audience": audience_service.describe(audience, session=session),
        "link_url": material.link_url, "mp_appid": material.mp_appid, "mp_path": material.mp_path,
        "file_name": material.file_name, "body_chars": len(material.body_html or "") or None,
        "has_cover": material.cover_key is not None, "status": material.status,
    }


def _save_tags(session, material_id, tags):
    session.execute(delete(MaterialTag).where(MaterialTag.material_id == material_id))
    if tags:
        session.execute(insert(MaterialTag), [{"material_id": material_id, "tag": tag} for tag in tags])


def create_material(*, staff, kind, audience, tags=(), file=None, cover=None, **values):
    """A new draft material; returns it. `values`: title, summary, valid_from, valid_to and,
    by kind, body_html (article), link_url (link), mp_appid + mp_path (miniprogram).
    `file` / `cover` are `FileIn`s. Raises 403 (role), 422 (a field, `details.field`;
    `unsupported_file_type`, `invalid_image`, `empty_file`), 413 `file_too_large`,
    503 `storage_unavailable`. Nothing is stored when it raises."""
    require(staff, "materials.edit", "你的角色无权新建素材")
    kind = inputs.choice(kind, field="kind", label="类型", choices=KIND_LABELS)
    clean = _fields(kind, values)
    tags = parse_tags(tags)
    audience = _audience(audience)
    main, cover_checked = _check_files(kind, file=file, cover=cover, creating=True)
    stored = _Stored()
    try:
        clean.update(_store_files(main, cover_checked, stored))
        now = utcnow()
        with write_transaction() as session:
            material = Material(kind=kind, status="draft", created_by_id=staff.id, created_at=now, updated_at=now,
                                **clean)
            session.add(material)
            session.flush()
            _save_tags(session, material.id, tags)
            audience_service.save(session, "material", material.id, audience)
            audit.record(session, actor=staff, action="material.create", entity_type="material",
                         entity_id=material.id, label=material.title,
                         after=_audit_values(material, tags, audience, session))
    except BaseException:
        stored.undo()
        raise
    return material


def _locked(session, material_id):
    material = session.execute(select(Material).where(Material.id == material_id).with_for_update()).scalar_one_or_none()
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    return material


def update_material(*, staff, material_id, audience, tags=(), file=None, cover=None, **values):
    """Change a material's fields, tags, audience and (optionally) replace its file or cover;
    its kind and status stay. The old files are deleted after the change commits. Raises as
    `create_material`, and 404 `material_not_found`."""
    require(staff, "materials.edit", "你的角色无权修改素材")
    material = db.session.get(Material, material_id)
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    kind = material.kind
    clean = _fields(kind, values)
    tags = parse_tags(tags)
    audience = _audience(audience)
    main, cover_checked = _check_files(kind, file=file, cover=cover, creating=False)
    stored = _Stored()
    replaced = []
    try:
        clean.update(_store_files(main, cover_checked, stored))
        with write_transaction() as session:
            material = _locked(session, material_id)
            old_tags = material.tags
            before = _audit_values(material, old_tags, audience_service.load("material", material.id, session=session),
                                   session)
            for column in ("file_key", "cover_key", "thumb_key"):
                if column in clean and getattr(material, column):
                    replaced.append(getattr(material, column))
            for column, value in clean.items():
                setattr(material, column, value)
            material.updated_at = utcnow()
            _save_tags(session, material.id, tags)
            audience_service.save(session, "material", material.id, audience)
            session.flush()
            session.expire(material, ["tag_rows"])
            after = _audit_values(material, tags, audience, session)
            old, new = audit.changed(before, after)
            if old or new or main is not None or cover_checked is not None:
                audit.record(session, actor=staff, action="material.update", entity_type="material",
                             entity_id=material.id, label=material.title, before=old, after=new)
    except BaseException:
        stored.undo()
        raise
    _delete_quietly(replaced)
    return material


def _transition(*, staff, material_id, to, action, allowed_from, refusal):
    require(staff, "materials.edit", "你的角色无权发布或撤回素材")
    with write_transaction() as session:
        material = _locked(session, material_id)
        if material.status not in allowed_from:
            raise DomainError("material_status", refusal.format(status=material.status_label), 409)
        before = material.status
        material.status = to
        material.updated_at = utcnow()
        if to == "published":
            material.published_at = material.updated_at
        audit.record(session, actor=staff, action=action, entity_type="material", entity_id=material.id,
                     label=material.title, before={"status": before}, after={"status": to})
    return material


def publish_material(*, staff, material_id):
    """Draft or withdrawn → published (newest first in the dealers' list from now); 409 otherwise."""
    return _transition(staff=staff, material_id=material_id, to="published", action="material.publish",
                       allowed_from=("draft", "withdrawn"), refusal="素材当前为“{status}”，不能再次发布")


def withdraw_material(*, staff, material_id):
    """Published → withdrawn: dealers no longer see it (its id answers 404); 409 otherwise."""
    return _transition(staff=staff, material_id=material_id, to="withdrawn", action="material.withdraw",
                       allowed_from=("published",), refusal="素材当前为“{status}”，只有已发布的素材可以撤回")


# --- staff: reading --------------------------------------------------------------------

def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search(q):
    """Title contains `q`, or one of the tags does (case-insensitive)."""
    pattern = f"%{_escape_like(q)}%"
    return or_(
        Material.title.ilike(pattern, escape="\\"),
        select(MaterialTag.material_id).where(MaterialTag.material_id == Material.id,
                                              MaterialTag.tag.ilike(pattern, escape="\\")).exists(),
    )


def _tagged(tag):
    return select(MaterialTag.material_id).where(MaterialTag.material_id == Material.id, MaterialTag.tag == tag).exists()


VALIDITY_LABELS = {"current": "今天有效", "upcoming": "尚未生效", "expired": "已过期"}


def _validity(validity, today):
    if validity == "current":
        return and_(or_(Material.valid_from.is_(None), Material.valid_from <= today),
                    or_(Material.valid_to.is_(None), Material.valid_to >= today))
    if validity == "upcoming":
        return Material.valid_from > today
    return Material.valid_to < today


def list_materials(*, staff, q=None, kind=None, status=None, tag=None, validity=None, page=1,
                   page_size=STAFF_PAGE_SIZE):
    """One page for the console, newest first: ([(Material, share count)], total). `validity`:
    current / upcoming / expired (China date today)."""
    require(staff, "materials.view", "你的角色无权查看素材")
    where = []
    if validity:
        inputs.choice(validity, field="validity", label="有效期", choices=VALIDITY_LABELS)
        where.append(_validity(validity, business_today()))
    if q:
        where.append(_search(q))
    if kind:
        where.append(Material.kind == inputs.choice(kind, field="kind", label="类型", choices=KIND_LABELS))
    if status:
        where.append(Material.status == inputs.choice(status, field="status", label="状态", choices=STATUS_LABELS))
    if tag:
        where.append(_tagged(tag))
    total = db.session.execute(select(func.count()).select_from(Material).where(*where)).scalar_one()
    shares = (select(func.count()).where(MaterialShare.material_id == Material.id)
              .correlate(Material).scalar_subquery())
    rows = db.session.execute(
        select(Material, shares.label("shares")).where(*where).order_by(Material.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).all()
    return rows, total


def all_tags():
    """Every tag in use, with how many materials carry it (for the console's filter)."""
    return db.session.execute(
        select(MaterialTag.tag, func.count()).group_by(MaterialTag.tag).order_by(func.count().desc(), MaterialTag.tag)
    ).all()


def get_material(*, staff, material_id):
    require(staff, "materials.view", "你的角色无权查看素材")
    material = db.session.get(Material, material_id)
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    return material


def share_stats(*, staff, material_id):
    """Who shared the material: ({"total", "dealers"}, [(dealer code, name, count, last shared at)])."""
    require(staff, "materials.view", "你的角色无权查看素材")
    rows = db.session.execute(
        select(Dealer.code, Dealer.name, func.count(MaterialShare.id), func.max(MaterialShare.created_at))
        .join(Dealer, Dealer.id == MaterialShare.dealer_id)
        .where(MaterialShare.material_id == material_id)
        .group_by(Dealer.code, Dealer.name)
        .order_by(func.count(MaterialShare.id).desc(), Dealer.code)
    ).all()
    return {"total": sum(r[2] for r in rows), "dealers": len(rows)}, rows


# --- dealers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Facts:
    code: str
    tier_code: str
    region_code: str


def _facts(dealer_id):
    """The dealer's code, tier and region as they are now (not as a cached caller says)."""
    row = db.session.execute(
        select(Dealer.code, Tier.code, Dealer.region_code).join(Tier, Tier.id == Dealer.tier_id)
        .where(Dealer.id == dealer_id)
    ).one()
    return _Facts(*row)


def _visible(facts, today):
    return and_(
        Material.status == "published",
        or_(Material.valid_from.is_(None), Material.valid_from <= today),
        or_(Material.valid_to.is_(None), Material.valid_to >= today),
        audience_service.visible_condition("material", Material.id, dealer_code=facts.code,
                                           tier_code=facts.tier_code, region_code=facts.region_code),
    )


def list_for_dealer(*, dealer_id, q=None, tag=None, kind=None, page=1, page_size=20):
    """Materials addressed to the dealer now, newest first: (materials, total, tags) where
    `tags` are [(tag, count)] over everything the dealer may see (filter chips)."""
    visible = _visible(_facts(dealer_id), business_today())
    where = [visible]
    if q:
        where.append(_search(q))
    if tag:
        where.append(_tagged(tag))
    if kind:
        where.append(Material.kind == kind)
    total = db.session.execute(select(func.count()).select_from(Material).where(*where)).scalar_one()
    materials = db.session.execute(
        select(Material).where(*where).order_by(Material.published_at.desc(), Material.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    tags = db.session.execute(
        select(MaterialTag.tag, func.count()).join(Material, Material.id == MaterialTag.material_id)
        .where(visible).group_by(MaterialTag.tag).order_by(func.count().desc(), MaterialTag.tag)
    ).all()
    return materials, total, tags


def get_for_dealer(*, dealer_id, material_id):
    """The material if the dealer may see it now; otherwise 404 `material_not_found`, the
    same for a draft, a withdrawn or expired material, another audience's, or no such id."""
    material = db.session.execute(
        select(Material).where(Material.id == material_id, _visible(_facts(dealer_id), business_today()))
    ).scalar_one_or_none()
    if material is None:
        raise NotFound("素材不存在或已下架", "material_not_found")
    return material


def share_material(*, user, material_id):
    """Record that the dealer's user is forwarding the material and return what to forward
    (`share_payload`). 404 as `get_for_dealer`."""
    material = get_for_dealer(dealer_id=user.dealer_id, material_id=material_id)
    with write_transaction() as session:
        session.add(MaterialShare(material_id=material.id, dealer_id=user.dealer_id, user_id=user.id,
                                  created_at=utcnow()))
    return material, share_payload(material)


# --- URLs and what to forward -----------------------------------------------------------

def file_url(material, *, download=False):
    """A signed, expiring URL of the material's file (None without one); `download=True`
    makes the response an attachment named `file_name`."""
    if not material.file_key:
        return None
    return get_storage().url_for(material.file_key, download_name=material.file_name if download else None)


def thumb_url(material):
    return get_storage().url_for(material.thumb_key) if material.thumb_key else None


def cover_url(material):
    return get_storage().url_for(material.cover_key) if material.cover_key else None


def detail_path(material):
    return f"{DETAIL_PAGE}?id={material.id}"


def share_payload(material):
    """What the mini-program needs to forward the material to a customer group, by kind:

    - image / poster: `images` [{url, thumb_url}] — download with wx.downloadFile, then
      wx.showShareImageMenu({path: tempFilePath}) (send to a chat, save to the album);
    - video: `video` {url, thumb_url, file_name} for wx.downloadFile + wx.shareVideoMessage;
    - file: `file` {url, file_name, size} for wx.downloadFile + wx.shareFileMessage;
    - article / link / miniprogram: `share_app_message` {title, path, imageUrl} — exactly what
      Page.onShareAppMessage returns (path starts with "/", imageUrl a PNG/JPG shown at 5:4,
      absent when there is no cover); a mini-program card also has `miniprogram`
      {appid, path, title, image_url}; for a card of another mini-program the share path is
      our detail page, which opens it with wx.navigateToMiniProgram.
    Every payload has `kind`, `title` and `method` (which of the above to use).
    """
    base = {"kind": material.kind, "title": material.title}
    if material.kind in IMAGE_KINDS:
        return {**base, "method": "share_image_menu",
                "images": [{"url": file_url(material), "thumb_url": thumb_url(material)}]}
    if material.kind == "video":
        return {**base, "method": "share_video_message",
                "video": {"url": file_url(material), "thumb_url": thumb_url(material), "file_name": material.file_name}}
    if material.kind == "file":
        return {**base, "method": "share_file_message",
                "file": {"url": file_url(material, download=True), "file_name": material.file_name,
                         "size": material.file_size}}
    path = detail_path(material)
    if material.kind == "miniprogram" and material.mp_appid == current_app.config["WECHAT_APP_ID"]:
        path = "/" + material.mp_path
    card = {"title": material.title, "path": path}
    image = thumb_url(material)
    if image:
        card["imageUrl"] = image
    payload = {**base, "method": "share_app_message", "share_app_message": card}
    if material.kind == "link":
        payload["link_url"] = material.link_url
    if material.kind == "miniprogram":
        payload["miniprogram"] = {"appid": material.mp_appid, "path": "/" + material.mp_path,
                                  "title": material.title, "image_url": image}
    return payload


# --- campaigns ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignAttachment:
    """A material as a WeCom customer-group message attachment (add_msg_template).

    `msgtype` is what WeCom calls it: "image" (image, poster), "video", "file", "link"
    (link; an article becomes a link only if it has a public URL, so articles are sent as
    "miniprogram" cards of the detail page), "miniprogram". Media (a picture, the video,
    the file, or the card's cover) must be uploaded to WeCom (media/upload) for its media_id:
    `media_bytes()` reads them from storage, `media_name` and `media_content_type` name
    them. Links carry `url`, `title`, `desc` and `picurl` (a signed URL of the cover, valid
    STORAGE_URL_TTL_SECONDS); cards carry `appid`, `page` (with ".html" before any query,
    as WeCom requires) and `title`, and always a cover (the thumbnail) in the media fields.
    """

    material_id: int
    msgtype: str
    title: str
    media_key: str | None = None
    media_name: str | None = None
    media_content_type: str | None = None
    url: str | None = None
    desc: str | None = None
    picurl: str | None = None
    appid: str | None = None
    page: str | None = None

    def media_bytes(self):
        return get_storage().get(self.media_key) if self.media_key else None


def _wecom_page(path):
    page, _, query = path.lstrip("/").partition("?")
    return page + ".html" + (f"?{query}" if query else "")


def campaign_attachment(material_id, *, on=None):
    """The material as a campaign attachment. It must be published and valid on `on` (a
    China date, default today): otherwise 422 `material_unusable` saying why; 404 for no such id.
    Who receives the campaign is the campaign's audience, not the material's."""
    material = db.session.get(Material, material_id)
    if material is None:
        raise NotFound("素材不存在", "material_not_found")
    day = on or business_today()
    if material.status != "published":
        raise DomainError("material_unusable", f"素材“{material.title}”尚未发布或已撤回，不能附加到群发", 422)
    if (material.valid_from and material.valid_from > day) or (material.valid_to and material.valid_to < day):
        raise DomainError("material_unusable", f"素材“{material.title}”在发送日不在有效期内", 422)
    base = {"material_id": material.id, "title": material.title}
    if material.kind in IMAGE_KINDS:
        return CampaignAttachment(**base, msgtype="image", media_key=material.file_key, media_name=material.file_name,
                                  media_content_type=material.file_content_type)
    if material.kind in ("video", "file"):
        return CampaignAttachment(**base, msgtype=material.kind, media_key=material.file_key,
                                  media_name=material.file_name, media_content_type=material.file_content_type)
    cover = {"media_key": material.thumb_key, "media_name": f"material-{material.id}.jpg",
             "media_content_type": "image/jpeg" if material.thumb_key else None}
    if material.kind == "article" and not material.thumb_key:
        # Sent as a mini-program card, whose pic_media_id WeCom requires.
        raise DomainError("material_unusable", f"图文“{material.title}”没有封面图，不能作为小程序卡片群发", 422)
    if material.kind == "link":
        return CampaignAttachment(**base, msgtype="link", url=material.link_url, desc=material.summary or None,
                                  picurl=thumb_url(material), **cover)
    if material.kind == "miniprogram":
        return CampaignAttachment(**base, msgtype="miniprogram", appid=material.mp_appid,
                                  page=_wecom_page(material.mp_path), **cover)
    return CampaignAttachment(**base, msgtype="miniprogram", appid=current_app.config["WECHAT_APP_ID"],
                              page=_wecom_page(detail_path(material)), **cover)
