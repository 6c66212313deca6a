"""The dealer-facing shapes of rebates (GET /api/mp/v1/rebates, GET /api/mp/v1/rebates/<id>)."""
import marshmallow as ma

from app.funds.schemas import LedgerEntryOut
from app.kernel.validation import DateTime, Int, List, Nested, Schema, Str


class NextTierOut(Schema):
    threshold_fen = Int(required=True, metadata={"description": "下一档门槛金额"})
    rate_bp = Int(required=True, metadata={"description": "下一档返利比例（基点，1 基点 = 0.01%）"})
    gap_fen = Int(required=True, metadata={"description": "还差多少金额达到下一档"})
    estimated_rebate_fen = Int(required=True, metadata={"description": "恰好达到下一档时本期可得返利（含已达标的增长返利）"})


class RuleRefOut(Schema):
    id = Int(required=True)
    name = Str(required=True)
    basis = Str(required=True, metadata={"description": "shipped 按发货金额 / paid 按回款金额"})
    description = Str(required=True, metadata={"description": "规则说明（中文）"})


class ProgressOut(Schema):
    period = Str(required=True, metadata={"description": "当前期间：2026-11 / 2026Q4 / 2026"})
    period_label = Str(required=True)
    period_end = ma.fields.Date(required=True, metadata={"description": "期间最后一天（北京时间）"})
    rule = Nested(RuleRefOut, required=True)
    amount_fen = Int(required=True, metadata={"description": "本期截至今天的计算基数金额"})
    current_rate_bp = Int(required=True, metadata={"description": "当前达到的返利比例（档位 + 增长返利，基点）"})
    tier_rate_bp = Int(required=True)
    growth_rate_bp = Int(required=True)
    last_year_amount_fen = Int(allow_none=True, metadata={"description": "去年同期金额（规则有增长返利时）"})
    estimated_rebate_fen = Int(required=True, metadata={"description": "按当前金额与比例估算的本期返利"})
    next_tier = Nested(NextTierOut, allow_none=True, required=True, metadata={"description": "已达最高档时为 null"})


class DocumentOut(Schema):
    id = Int(required=True)
    period = Str(required=True)
    period_label = Str(required=True)
    rule_name = Str(required=True)
    basis = Str(required=True)
    basis_label = Str(required=True)
    basis_amount_fen = Int(required=True)
    last_year_amount_fen = Int(allow_none=True)
    tier_rate_bp = Int(required=True)
    growth_rate_bp = Int(required=True)
    rate_bp = Int(required=True)
    rebate_fen = Int(required=True, metadata={"description": "返利金额 = 基数 × 比例，四舍五入到分（每张返利单一次）"})
    status = Str(required=True, metadata={"description": "draft 待审核 / approved 已入账 / rejected 已驳回"})
    status_label = Str(required=True)
    decided_at = DateTime(allow_none=True)
    created_at = DateTime(required=True)


class MovementOut(LedgerEntryOut):
    document_id = Int(allow_none=True, metadata={"description": "返利入账对应的返利单 id"})


class HistoryOut(Schema):
    documents = Nested(DocumentOut, many=True, required=True, metadata={"description": "最近的返利单（新的在前）"})
    movements = Nested(MovementOut, many=True, required=True, metadata={"description": "返利账户最近的流水（新的在前）"})


class RebatesOut(Schema):
    balance_fen = Int(required=True, metadata={"description": "返利余额"})
    history = Nested(HistoryOut, required=True)
    progress = Nested(ProgressOut, allow_none=True, required=True,
                      metadata={"description": "适用于本经销商的第一条返利规则的本期进度；没有适用规则时为 null"})
    progress_all = Nested(ProgressOut, many=True, required=True, metadata={"description": "每条适用规则的本期进度"})


class DocumentLineOut(Schema):
    source = Str(required=True, metadata={"description": "shipment 发货 / order 已付清订单 / return 退货入库（金额为负）"})
    ref_label = Str(required=True)
    order_no = Str(required=True)
    sku_code = Str(required=True)
    name = Str(required=True)
    qty = Int(required=True)
    unit_price_fen = Int(required=True)
    amount_fen = Int(required=True)
    happened_at = DateTime(required=True)


class DocumentDetailOut(DocumentOut):
    window_start = ma.fields.Date(required=True)
    window_end = ma.fields.Date(required=True)
    lines = List(Nested(DocumentLineOut), required=True)
