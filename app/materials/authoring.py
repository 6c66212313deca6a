"""Authoring materials: staff (admin and marketing) create, update, publish and withdraw.

Each save checks every field first, then the files (`app.materials.files`), stores the
files, and only then writes the rows, the audience and the audit entry in one transaction.
If the transaction fails the stored files are deleted again, so a failed save leaves
neither rows nor files.
"""
import re

import nh3
from flask import current_app
from sqlalchemy import delete, insert, select

from app.audience import service as audience_service
from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require
from app.materials.files import Stored, check_files, delete_quietly, store_files
from app.materials.models import KIND_LABELS, Material, MaterialTag

MAX_TAGS = 10
MAX_TAG_LEN = 16
MAX_BODY_CHARS = 100_000

# HTML an article may contain: text structure, links and pictures; no scripts, styles,
# frames, forms or event handlers (nh3 / ammonia removes whatever is not listed).
ARTICLE_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "h2", "h3", "h4", "ul", "ol", "li",
                "blockquote", "a", "img", "span", "hr", "table", "thead", "tbody", "tr", "th", "td"}
ARTICLE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}

_LINK_URL = re.compile(r"https?://[^\s\"'<>]{1,500}")
_APPID = re.compile(r"wx[0-9a-zA-Z]{16}")
_MP_PATH = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*(?:\?[A-Za-z0-9_.\-=&%]*)?")


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
    main, cover_checked = check_files(kind, file=file, cover=cover, creating=True)
    stored = Stored()
    try:
        clean.update(store_files(main, cover_checked, stored))
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
    main, cover_checked = check_files(kind, file=file, cover=cover, creating=False)
    stored = Stored()
    replaced = []
    try:
        clean.update(store_files(main, cover_checked, stored))
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
    delete_quietly(replaced)
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
