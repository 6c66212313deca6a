from app.dealers.schemas import AddressOut, CreditOut
from app.orders.models import ORDER_STATUSES, PAYMENT_METHODS
from app.validation import (
    Bool,
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

MAX_QTY = 1_000_000
MAX_LINES = 200


class LineIn(Schema):
    sku_id = id_field(required=True, metadata={"description": "商品列表中的 id"})
    qty = Int(required=True, validate=int_range(1, MAX_QTY))


class CheckoutIn(Schema):
    lines = List(Nested(LineIn), required=True, validate=items(1, MAX_LINES))
    address_id = id_field(allow_none=True, metadata={"description": "不传则使用默认收货地址"})
    payment_method = Str(load_default="credit", validate=one_of(PAYMENT_METHODS), metadata={
        "description": "credit 信用额度（账期，占用额度）/ wechat 微信支付（不占额度，提交后用 POST /orders/{order_no}/pay 付款）；"
                       "prepaid 预付款、offline 线下转账暂不支持（422 payment_method_unsupported）"})


class OrderIn(CheckoutIn):
    remark = Str(load_default="", validate=length(max=200), metadata={"description": "订单备注"})
    use_rebate_fen = Int(load_default=0, validate=int_range(0, 10**13), metadata={
        "description": "用返利余额抵扣的金额（分）；暂不支持，大于 0 时返回 422 rebate_unsupported"})


class CartItemIn(Schema):
    qty = Int(required=True, validate=int_range(1, MAX_QTY))


class CancelIn(Schema):
    reason = Str(validate=length(max=200), metadata={"description": "取消原因（可选）"})


class OrderListQuery(PageQuery):
    status = Str(validate=one_of(ORDER_STATUSES))


class PricedLineOut(Schema):
    sku_id = Int(required=True)
    sku_code = Str(required=True)
    name = Str(required=True)
    spec = Str(required=True)
    unit = Str(required=True)
    qty = Int(required=True)
    list_price_fen = Int(required=True)
    unit_price_fen = Int(required=True)
    amount_fen = Int(required=True)
    price_source = Str(required=True)


class TotalsOut(Schema):
    subtotal_fen = Int(required=True)
    discount_fen = Int(required=True)
    shipping_fen = Int(required=True)
    total_fen = Int(required=True)


class OrderTotalsOut(TotalsOut):
    paid_fen = Int(required=True, metadata={"description": "已付金额（微信支付）"})


class ProblemOut(Schema):
    class Meta:
        unknown = "include"

    code = Str(required=True, metadata={"description": "sku_unavailable / below_moq / not_step_multiple / insufficient_stock / credit_limit_exceeded / dealer_suspended"})
    message = Str(required=True)
    sku_id = Int()


class PreviewOut(Schema):
    ok = Bool(required=True, metadata={"description": "没有任何问题、可以直接下单时为 true"})
    lines = Nested(PricedLineOut, many=True, required=True)
    totals = Nested(TotalsOut, required=True)
    problems = List(Nested(ProblemOut), required=True)
    credit = Nested(CreditOut, required=True)
    address = Nested(AddressOut, required=True)


class CartLineOut(PricedLineOut):
    available = Int(required=True)


class CartOut(Schema):
    items = Nested(CartLineOut, many=True, required=True)
    totals = Nested(TotalsOut, required=True)
    problems = List(Nested(ProblemOut), required=True)


class EventOut(Schema):
    from_status = Str(allow_none=True)
    to_status = Str(required=True)
    label = Str(required=True)
    actor_type = Str(required=True)
    actor_name = Str(allow_none=True)
    reason = Str(allow_none=True)
    at = DateTime(required=True)


class ShipToOut(Schema):
    contact_name = Str(required=True)
    phone = Str(required=True)
    region_code = Str(required=True)
    address = Str(required=True)


class OrderLineOut(PricedLineOut):
    shipped_qty = Int(required=True, metadata={"description": "已发货数量（各次发货之和）"})


class ShipmentLineOut(Schema):
    sku_id = Int(required=True)
    sku_code = Str(required=True)
    name = Str(required=True)
    unit = Str(required=True)
    qty = Int(required=True, metadata={"description": "本次发货数量"})


class ShipmentOut(Schema):
    seq = Int(required=True, metadata={"description": "本订单第几次发货（从 1 起）"})
    carrier = Str(required=True, metadata={"description": "承运商，如 顺丰速运"})
    tracking_no = Str(required=True, metadata={"description": "运单号"})
    shipped_at = DateTime(required=True)
    lines = Nested(ShipmentLineOut, many=True, required=True)


class OrderOut(Schema):
    order_no = Str(required=True)
    status = Str(required=True, validate=one_of(ORDER_STATUSES))
    status_label = Str(required=True)
    payment_method = Str(required=True)
    lines = Nested(OrderLineOut, many=True, required=True)
    totals = Nested(OrderTotalsOut, required=True)
    ship_to = Nested(ShipToOut, required=True)
    remark = Str(required=True)
    created_at = DateTime(required=True)
    events = Nested(EventOut, many=True, required=True)
    shipments = Nested(ShipmentOut, many=True, required=True,
                        metadata={"description": "发货记录（先发的在前）；全部发货后可确认收货"})


class OrderSummaryOut(Schema):
    order_no = Str(required=True)
    status = Str(required=True)
    status_label = Str(required=True)
    total_fen = Int(required=True)
    line_count = Int(required=True)
    created_at = DateTime(required=True)


class OrderPage(Schema):
    items = Nested(OrderSummaryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
