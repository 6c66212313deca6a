from app.orders.schemas import MAX_QTY
from app.returns.models import RETURN_STATUSES
from app.returns.service import MAX_PHOTOS
from app.validation import (
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


class ReturnListQuery(PageQuery):
    status = Str(validate=one_of(RETURN_STATUSES))


class ReturnLineOut(Schema):
    sku_id = Int(required=True)
    sku_code = Str(required=True)
    name = Str(required=True)
    spec = Str(required=True)
    unit = Str(required=True)
    qty = Int(required=True)
    unit_price_fen = Int(required=True, metadata={"description": "下单时的单价"})
    amount_fen = Int(required=True, metadata={"description": "单价 × 数量：本行应退金额"})


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


class ReturnSummaryOut(Schema):
    id = Int(required=True)
    return_no = Str(required=True, metadata={"example": "RT202611260001-1"})
    order_no = Str(required=True)
    status = Str(required=True, validate=one_of(RETURN_STATUSES),
                 metadata={"description": "pending 待审核 / approved 已同意待退回 / rejected 已拒绝 / received 已收货入库"})
    status_label = Str(required=True)
    refund_fen = Int(required=True, metadata={"description": "应退金额（各行之和）"})
    refund_status = Str(allow_none=True, metadata={"description": "null 尚未到退款环节；pending_ledger 货已入库、退款待记入资金台账；credited 已入账"})
    line_count = Int(required=True)
    created_at = DateTime(required=True)


class ReturnOut(ReturnSummaryOut):
    reason = Str(required=True)
    decision_reason = Str(allow_none=True, metadata={"description": "同意或拒绝时填写的说明（拒绝时为原因）"})
    lines = Nested(ReturnLineOut, many=True, required=True)
    photos = Nested(ReturnPhotoOut, many=True, required=True)
    events = Nested(ReturnEventOut, many=True, required=True)


class ReturnPage(Schema):
    items = Nested(ReturnSummaryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
