"""Mini-program shapes of policies (GET /policies, GET /policies/<id>, POST /policies/<id>/ack)."""
import marshmallow as ma

from app.kernel.validation import (
    Bool,
    DateTime,
    Int,
    Nested,
    PageQuery,
    Schema,
    Str,
    one_of,
)
from app.policies.models import CATEGORY_LABELS

CATEGORIES = tuple(CATEGORY_LABELS)
CATEGORY_DOC = "；".join(f"{k} {v}" for k, v in CATEGORY_LABELS.items())


class PolicyListQuery(PageQuery):
    category = Str(validate=one_of(CATEGORIES, CATEGORY_LABELS),
                   metadata={"description": f"分类：{CATEGORY_DOC}"})


class PolicySummaryOut(Schema):
    id = Int(required=True)
    title = Str(required=True)
    category = Str(required=True, metadata={"description": CATEGORY_DOC})
    category_label = Str(required=True)
    published_at = DateTime(required=True, metadata={"description": "当前版本的发布时间"})
    version = Int(required=True)
    read = Bool(required=True, metadata={"description": "当前账号是否已阅读当前版本（新版本发布后重新变为未读）"})
    ack_required = Bool(required=True)
    acked = Bool(required=True, metadata={"description": "本经销商是否已确认当前版本"})


class PolicyPage(Schema):
    items = Nested(PolicySummaryOut, many=True, required=True)
    unread = Int(required=True, metadata={"description": "当前账号未读的政策数（不受分类筛选影响）"})
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)


class AttachmentOut(Schema):
    id = Int(required=True)
    filename = Str(required=True)
    content_type = Str(required=True, metadata={"description": "image/jpeg、image/png、image/webp 或 application/pdf"})
    size = Int(required=True)
    url = Str(required=True, metadata={"description": "下载地址（有时效）"})


class PolicyOut(PolicySummaryOut):
    body_html = Str(required=True, metadata={"description": "已过滤的 HTML，可直接用于 <rich-text nodes>"})
    effective_from = ma.fields.Date(allow_none=True)
    effective_to = ma.fields.Date(allow_none=True)
    attachments = Nested(AttachmentOut, many=True, required=True)
    changes = ma.fields.List(Str(), required=True, metadata={"description": "本次更新：与上一版本相比的改动（第 1 版为空）"})


class AckOut(Schema):
    policy_id = Int(required=True)
    version = Int(required=True)
    acked = Bool(required=True)
    acked_at = DateTime(required=True)
