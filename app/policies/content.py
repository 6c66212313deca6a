"""A policy's body and attachments as staff hand them in, and what changed between versions.

`clean_html` keeps only an allowlist of tags and attributes (nh3, the Python binding of the
Rust `ammonia` sanitiser): no scripts, no event handlers, no `javascript:` links, no styles.
The result is what the mini-program renders with <rich-text>.

`check_attachment` judges a file from its bytes: a JPEG/PNG/WebP image that decodes, or a PDF.

`changes` says in Chinese what differs between two snapshots (title, category, body text,
effective dates, attachments, acknowledgement), for the 「本次更新」 dealers see.
"""
import difflib
import html
import re

import nh3

from app.kernel.errors import DomainError
from app.storage.images import inspect_image

TAGS = {
    "p", "br", "hr", "div", "span", "strong", "b", "em", "i", "u", "s", "del", "sub", "sup",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
    "a", "img", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
MAX_BODY_CHARS = 100_000

IMAGE_MAX_BYTES = 10 * 1024 * 1024
PDF_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000
MAX_ATTACHMENTS = 10

_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|li|h[1-6]|tr|blockquote|pre|table|caption)>", re.I)
_SPACE = re.compile(r"[ \t\u3000\xa0]+")


def clean_html(raw):
    """The body with every tag, attribute and URL scheme outside the allowlist removed."""
    raw = raw or ""
    if len(raw) > MAX_BODY_CHARS:
        raise DomainError("invalid_field", f"正文不能超过 {MAX_BODY_CHARS} 个字符", 422, {"field": "body"})
    cleaned = nh3.clean(
        raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return cleaned.strip()


def body_text(body_html):
    """The body's text, one line per paragraph (for diffs and plain-text previews)."""
    marked = _BLOCK_END.sub("\n", body_html or "")
    text = html.unescape(nh3.clean(marked, tags=set()))
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return [line for line in lines if line]


# --- attachments -------------------------------------------------------------------------

def check_attachment(data, filename):
    """(content_type, clean filename) of an acceptable attachment; DomainError 413/422 otherwise."""
    name = _filename(filename)
    if not data:
        raise DomainError("empty_file", f"附件「{name}」是空文件", 422)
    if data[:5] == b"%PDF-":
        if len(data) > PDF_MAX_BYTES:
            raise DomainError("file_too_large", f"附件「{name}」超过 20 MB，请压缩后再上传", 413)
        if b"%%EOF" not in data[-2048:]:
            raise DomainError("invalid_file", f"附件「{name}」不是完整的 PDF 文件", 422)
        return "application/pdf", name
    if len(data) > IMAGE_MAX_BYTES:
        raise DomainError("file_too_large", f"附件「{name}」超过 10 MB，请压缩后再上传", 413)
    try:
        content_type, _w, _h = inspect_image(data, max_pixels=IMAGE_MAX_PIXELS)
    except DomainError as exc:
        if exc.code == "unsupported_file_type":
            raise DomainError("unsupported_file_type", f"附件「{name}」的格式不支持：只能上传 JPG、PNG、WebP 图片或 PDF 文件", 422) from None
        raise DomainError(exc.code, f"附件「{name}」：{exc.message}", exc.status) from None
    return content_type, name


def _filename(filename):
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[-100:] or "附件"


# --- what changed --------------------------------------------------------------------------

def _clip(text, limit=60):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dates(snapshot):
    start, end = snapshot["effective_from"], snapshot["effective_to"]
    if not start and not end:
        return "未设定"
    return f"{start.isoformat() if start else '即日起'} 至 {end.isoformat() if end else '长期'}"


def _body_changes(old_lines, new_lines, limit=5):
    parts = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        old, new = " ".join(old_lines[a1:a2]), " ".join(new_lines[b1:b2])
        if op == "replace":
            old, new = _changed_span(old, new)
        if op == "insert":
            parts.append(f"新增「{_clip(new)}」")
        elif op == "delete":
            parts.append(f"删除「{_clip(old)}」")
        else:
            parts.append(f"「{_clip(old)}」改为「{_clip(new)}」")
    if not parts:
        return None
    shown = "；".join(parts[:limit])
    return f"正文：{shown}" + (f"；等共 {len(parts)} 处修改" if len(parts) > limit else "")


def _changed_span(old, new, context=12):
    """The part of two versions of a paragraph that differs, with a little context either
    side, so a one-word change in a long paragraph reads 「…的 2% 返利…」改为「…的 2.5% 返利…」."""
    blocks = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    changed = [b for b in blocks if b[0] != "equal"]
    if not changed:
        return old, new
    a1, b1 = changed[0][1], changed[0][3]
    a2, b2 = changed[-1][2], changed[-1][4]

    def cut(text, start, end):
        lo, hi = max(0, start - context), min(len(text), end + context)
        return ("…" if lo > 0 else "") + text[lo:hi] + ("…" if hi < len(text) else "")

    return cut(old, a1, a2), cut(new, b1, b2)


def changes(old, new, category_labels):
    """Chinese sentences for what differs between snapshots `old` and `new` (dicts with title,
    category, body_html, effective_from, effective_to, ack_required, attachments); [] if nothing."""
    found = []
    if old["title"] != new["title"]:
        found.append(f"标题：「{old['title']}」改为「{new['title']}」")
    if old["category"] != new["category"]:
        found.append(f"分类：{category_labels[old['category']]} 改为 {category_labels[new['category']]}")
    body = _body_changes(body_text(old["body_html"]), body_text(new["body_html"]))
    if body:
        found.append(body)
    elif old["body_html"] != new["body_html"]:
        found.append("正文：格式调整")
    if (old["effective_from"], old["effective_to"]) != (new["effective_from"], new["effective_to"]):
        found.append(f"有效期：{_dates(old)} 改为 {_dates(new)}")
    old_files = {a["id"]: a["filename"] for a in old["attachments"]}
    new_files = {a["id"]: a["filename"] for a in new["attachments"]}
    added = [name for i, name in new_files.items() if i not in old_files]
    removed = [name for i, name in old_files.items() if i not in new_files]
    if added or removed:
        words = ([f"新增 {'、'.join(added)}"] if added else []) + ([f"移除 {'、'.join(removed)}"] if removed else [])
        found.append("附件：" + "；".join(words))
    if old["ack_required"] != new["ack_required"]:
        found.append("改为需要确认" if new["ack_required"] else "改为无需确认")
    return found
