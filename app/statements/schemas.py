from app.kernel.validation import (
    DateTime,
    Int,
    Nested,
    PageQuery,
    Schema,
    Str,
    length,
    one_of,
)
from app.statements.models import EVENT_ACTIONS, EVENT_LABELS, STATEMENT_STATUSES, STATUS_LABELS
from app.statements.service import CATEGORIES, CATEGORY_LABELS, MAX_COMMENT

STATUS_DOC = "pending 待确认 / confirmed 已确认 / disputed 有异议"


class StatementListQuery(PageQuery):
    status = Str(validate=one_of(STATEMENT_STATUSES, STATUS_LABELS), metadata={"description": STATUS_DOC + "；不传则全部"})


class DisputeIn(Schema):
    comment = Str(required=True, validate=length(1, MAX_COMMENT),
                  metadata={"description": f"异议说明（必填，最多 {MAX_COMMENT} 字），如哪一笔金额不符"})


class StatementLineOut(Schema):
    occurred_at = DateTime(required=True, metadata={"description": "发生时间（UTC；按北京时间归入月份）"})
    ref_type = Str(required=True, metadata={"description": "order / shipment / payment / refund / rebate / adjustment"})
    order_no = Str(allow_none=True, metadata={"description": "相关订单号（如有）"})
    amount_fen = Int(required=True, metadata={"description": "正数增加余额，负数减少"})
    balance_after_fen = Int(required=True)
    note = Str(allow_none=True)


class StatementGroupOut(Schema):
    category = Str(required=True, validate=one_of(CATEGORIES, CATEGORY_LABELS),
                   metadata={"description": "orders 订货 / payments 付款 / rebates 返利 / returns 退货退款 / adjustments 调整 / other 其他"})
    label = Str(required=True)
    total_fen = Int(required=True, metadata={"description": "本类各笔之和"})
    lines = Nested(StatementLineOut, many=True, required=True)


class StatementAccountOut(Schema):
    account = Str(required=True, metadata={"description": "receivable 应收账款 / prepaid 预付款 / rebate 返利"})
    label = Str(required=True)
    opening_fen = Int(required=True, metadata={"description": "期初余额（上月对账单的期末余额）"})
    movement_fen = Int(required=True, metadata={"description": "本月发生额合计"})
    closing_fen = Int(required=True, metadata={"description": "期末余额 = 期初 + 本月发生"})
    groups = Nested(StatementGroupOut, many=True, required=True)


class StatementEventOut(Schema):
    action = Str(required=True, validate=one_of(EVENT_ACTIONS, EVENT_LABELS))
    label = Str(required=True)
    actor_name = Str(allow_none=True)
    comment = Str(allow_none=True, metadata={"description": "异议说明或财务处理说明"})
    at = DateTime(required=True)


class StatementSummaryOut(Schema):
    id = Int(required=True)
    statement_no = Str(required=True, metadata={"example": "DZ202611-D001"})
    month = Str(required=True, metadata={"example": "2026-11", "description": "北京时间自然月"})
    status = Str(required=True, validate=one_of(STATEMENT_STATUSES, STATUS_LABELS), metadata={"description": STATUS_DOC})
    status_label = Str(required=True)
    closing_receivable_fen = Int(required=True)
    closing_prepaid_fen = Int(required=True)
    closing_rebate_fen = Int(required=True)
    issued_at = DateTime(required=True)


class StatementOut(StatementSummaryOut):
    dealer_name = Str(required=True)
    period_start = DateTime(required=True)
    period_end = DateTime(required=True, metadata={"description": "不含：下月 1 日 0 点（北京时间）"})
    accounts = Nested(StatementAccountOut, many=True, required=True)
    dispute_comment = Str(allow_none=True)
    resolution_note = Str(allow_none=True, metadata={"description": "财务对异议的处理说明"})
    confirmed_at = DateTime(allow_none=True)
    events = Nested(StatementEventOut, many=True, required=True)
    print_url = Str(required=True, metadata={"description": "可打印 / 另存为 PDF 的对账单网页（签名链接，30 天内有效）"})


class StatementPage(Schema):
    items = Nested(StatementSummaryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
