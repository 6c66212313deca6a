from app.funds.models import REFUND_METHOD_LABELS, REFUND_METHODS
from app.funds.models import REFUND_STATUS_LABELS as REFUND_ITEM_LABELS
from app.funds.models import REFUND_STATUSES as REFUND_ITEM_STATUSES
from app.kernel.validation import (
    DateTime,
    Int,
    List,
    Nested,
    PageQuery,
    Schema,
    Str,
    id_field,
    int_range,
    items,
    length,
    one_of,
)
from app.orders.schemas import MAX_QTY
from app.returns.models import REFUND_LABELS, REFUND_STATUSES, RETURN_STATUSES, STATUS_LABELS
from app.returns.service import MAX_PHOTOS

MAX_RETURN_LINES = 200


class ReturnLineIn(Schema):
    sku_id = id_field(required=True, metadata={"description": "订单明细中的商品 id"})
    qty = Int(required=True, validate=int_range(1, MAX_QTY), metadata={"description": "退货数量（不超过已发货减去其他退货申请占用的数量）"})


class ReturnIn(Schema):
    lines = List(Nested(ReturnLineIn), required=True, validate=items(1, MAX_RETURN_LINES))
    reason = Str(required=True, validate=length(1, 500), metadata={"description": "退货原因（如破损、临期、发错货）"})
    photo_ids = List(
        id_field(), load_default=list, validate=items(0, MAX_PHOTOS),
        metadata={"description": f"POST /uploads 返回的图片 id，最多 {MAX_PHOTOS} 张，必须是本经销商上传的"},
    )


class WithdrawIn(Schema):
    reason = Str(validate=length(0, 200), load_default=None, metadata={"description": "撤回原因（可选）"})


class ReturnListQuery(PageQuery):
    status = Str(validate=one_of(RETURN_STATUSES, STATUS_LABELS))


class ReturnLineOut(Schema):
    sku_id = Int(required=True)
    sku_code = Str(required=True)
    name = Str(required=True)
    spec = Str(required=True)
    unit = Str(required=True)
    qty = Int(required=True)
    unit_price_fen = Int(required=True, metadata={"description": "下单时的单价"})
    amount_fen = Int(required=True, metadata={"description": "单价 × 申请数量：本行申请退款金额"})
    received_qty = Int(required=True, metadata={"description": "仓库已收到的数量（退款按实收数量计算）"})


class ReturnPhotoOut(Schema):
    id = Int(required=True)
    url = Str(required=True, metadata={"description": "图片地址（有时效）"})
    content_type = Str(required=True)
    width = Int(required=True)
    height = Int(required=True)


class ReturnEventOut(Schema):
    from_status = Str(allow_none=True)
    to_status = Str(required=True)
    label = Str(required=True)
    actor_type = Str(required=True, metadata={"description": "dealer_user 经销商 / staff 品牌员工"})
    actor_name = Str(allow_none=True)
    reason = Str(allow_none=True)
    at = DateTime(required=True)


class RefundItemOut(Schema):
    method = Str(required=True, validate=one_of(REFUND_METHODS, REFUND_METHOD_LABELS),
                 metadata={"description": "wechat 原路退回微信支付 / receivable 冲减应收账款 / prepaid 退回预付款"})
    method_label = Str(required=True)
    amount_fen = Int(required=True)
    status = Str(required=True, validate=one_of(REFUND_ITEM_STATUSES, REFUND_ITEM_LABELS))
    status_label = Str(required=True)
    refunded_at = DateTime(allow_none=True)
    created_at = DateTime(required=True)


class RefundOut(Schema):
    status = Str(allow_none=True, metadata={"description": "null 尚未收到货 / pending 待退款 / refunding 退款中（微信支付处理中） / refunded 已退款 / failed 退款失败（财务处理中）"})
    status_label = Str(required=True)
    amount_fen = Int(required=True, metadata={"description": "按已收到的货物应退的金额"})
    refunded_fen = Int(required=True, metadata={"description": "已经退回的金额"})
    items = Nested(RefundItemOut, many=True, required=True, metadata={"description": "每次入库产生的退款"})


class ReturnSummaryOut(Schema):
    id = Int(required=True)
    return_no = Str(required=True, metadata={"example": "RT202611260001-1"})
    order_no = Str(required=True)
    status = Str(required=True, validate=one_of(RETURN_STATUSES, STATUS_LABELS),
                 metadata={"description": "pending 待审核 / approved 已同意待退回 / receiving 部分入库 / received 已收货入库 / "
                                          "closed 已结束（按实收退款） / rejected 已拒绝 / withdrawn 已撤回"})
    status_label = Str(required=True)
    refund_fen = Int(required=True, metadata={"description": "申请退款金额（各行单价 × 申请数量之和）；实际退款按收到的货物计算，见详情的 refund"})
    refund_status = Str(allow_none=True, validate=one_of(REFUND_STATUSES, REFUND_LABELS),
                        metadata={"description": "null 尚未收到货；pending 待退款；refunding 退款中；refunded 已退款；failed 退款失败"})
    refunded_fen = Int(required=True, metadata={"description": "已经退回的金额"})
    line_count = Int(required=True)
    created_at = DateTime(required=True)


class ReturnOut(ReturnSummaryOut):
    reason = Str(required=True)
    decision_reason = Str(allow_none=True, metadata={"description": "同意或拒绝时填写的说明（拒绝时为原因）"})
    lines = Nested(ReturnLineOut, many=True, required=True)
    photos = Nested(ReturnPhotoOut, many=True, required=True)
    events = Nested(ReturnEventOut, many=True, required=True)
    refund = Nested(RefundOut, required=True)


class ReturnPage(Schema):
    items = Nested(ReturnSummaryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
