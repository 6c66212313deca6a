from app.dealers.schemas import AddressOut, CreditOut
from app.kernel.validation import (
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
from app.orders.models import ORDER_STATUSES, PAYMENT_METHOD_LABELS, PAYMENT_METHODS, STATUS_LABELS
from app.tracking.schemas import TrackingOut

MAX_QTY = 1_000_000
MAX_LINES = 200


class LineIn(Schema):
    sku_id = id_field(required=True, metadata={"description": "商品列表中的 id"})
    qty = Int(required=True, validate=int_range(1, MAX_QTY))


class CheckoutIn(Schema):
    lines = List(Nested(LineIn), required=True, validate=items(1, MAX_LINES))
    address_id = id_field(allow_none=True, metadata={"description": "不传则使用默认收货地址"})
    payment_method = Str(load_default="credit", validate=one_of(PAYMENT_METHODS, PAYMENT_METHOD_LABELS), metadata={
        "description": "返利抵扣之外的部分（payable_fen）如何支付：credit 信用额度（账期，占用额度，发货时转为应收账款）/ "
                       "prepaid 预付款（提交时从预付款余额扣除，余额不足 409 insufficient_prepaid）/ "
                       "wechat 微信支付（不占额度，提交后用 POST /orders/{order_no}/pay 付款）/ "
                       "offline 线下转账（不占额度，提交后上传转账凭证，财务确认后记为已付）"})
    use_rebate_fen = Int(load_default=0, validate=int_range(0, 10**13), metadata={
        "description": "用返利余额抵扣的金额（分），任何付款方式均可；不超过商品金额（小计−优惠）的品牌设定比例"
                       "（默认 30%，超出 422 rebate_over_cap），也不超过返利余额（409 insufficient_rebate）"})


class OrderIn(CheckoutIn):
    remark = Str(load_default="", validate=length(max=200), metadata={"description": "订单备注"})


class CartItemIn(Schema):
    qty = Int(required=True, validate=int_range(1, MAX_QTY))


class CancelIn(Schema):
    reason = Str(validate=length(max=200), metadata={"description": "取消原因（可选）"})


class OrderListQuery(PageQuery):
    status = Str(validate=one_of(ORDER_STATUSES, STATUS_LABELS))


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
    price_source = Str(required=True, metadata={"description": "dealer 经销商专属价 / tier 等级价 / list 目录价"})
    price_list_id = Int(required=True, allow_none=True, metadata={
        "description": "给出这个单价的价目表 id；目录价（list）为 null，较早的订单下单时未记录也为 null"})
    price_list_name = Str(required=True, allow_none=True, metadata={
        "description": "该价目表当时的名称（之后改名不影响这里）"})
    price_list_version = Int(required=True, allow_none=True, metadata={
        "description": "该价目表当时的版本号：价目表每改一次（改名、有效期、价格，含 Excel 导入）加 1"})


class TotalsOut(Schema):
    subtotal_fen = Int(required=True)
    discount_fen = Int(required=True)
    shipping_fen = Int(required=True)
    total_fen = Int(required=True)


class OrderTotalsOut(TotalsOut):
    rebate_fen = Int(required=True, metadata={"description": "返利抵扣金额（提交时从返利余额扣除；取消或驳回时退回）"})
    paid_fen = Int(required=True, metadata={
        "description": "付款方式已付金额（预付款在提交时付清；微信支付、线下转账确认后累加；不含返利抵扣）"})
    due_fen = Int(required=True, metadata={
        "description": "待付金额 = total_fen − rebate_fen − paid_fen（已取消或驳回的订单为 0）；"
                       "账期订单的待付部分发货后计入应收账款"})


class ProblemOut(Schema):
    class Meta:
        unknown = "include"

    code = Str(required=True, metadata={"description": "sku_unavailable / below_moq / not_step_multiple / insufficient_stock / credit_limit_exceeded / dealer_suspended / rebate_over_cap / insufficient_rebate / insufficient_prepaid"})
    message = Str(required=True)
    sku_id = Int()


class PaymentSplitOut(Schema):
    """How the order would be paid: total_fen = rebate_fen + payable_fen."""

    method = Str(required=True, validate=one_of(PAYMENT_METHODS, PAYMENT_METHOD_LABELS), metadata={"description": "所选付款方式"})
    method_label = Str(required=True, metadata={"description": "付款方式名称，如 预付款"})
    total_fen = Int(required=True, metadata={"description": "订单应付总额（同 totals.total_fen）"})
    goods_fen = Int(required=True, metadata={"description": "商品金额（小计−优惠，不含运费）：返利抵扣上限按它计算"})
    rebate_rate_bp = Int(required=True, metadata={"description": "返利抵扣比例上限（基点，3000 = 30%），品牌设定"})
    rebate_cap_fen = Int(required=True, metadata={"description": "按比例本单最多可抵扣的返利 = goods_fen × rebate_rate_bp ÷ 10000（四舍五入到分）"})
    rebate_available_fen = Int(required=True, metadata={"description": "当前返利余额"})
    rebate_max_fen = Int(required=True, metadata={"description": "本单实际最多可用返利 = min(rebate_cap_fen, rebate_available_fen)"})
    rebate_fen = Int(required=True, metadata={"description": "本次申请的返利抵扣（请求中的 use_rebate_fen）"})
    payable_fen = Int(required=True, metadata={"description": "由所选付款方式支付的金额 = total_fen − rebate_fen（账期占用额度、预付款扣除、微信或线下支付的都是它）"})
    prepaid_available_fen = Int(required=True, metadata={"description": "当前预付款余额（选择 prepaid 时须不少于 payable_fen）"})


class PreviewOut(Schema):
    ok = Bool(required=True, metadata={"description": "没有任何问题、可以直接下单时为 true"})
    lines = Nested(PricedLineOut, many=True, required=True)
    totals = Nested(TotalsOut, required=True)
    payment = Nested(PaymentSplitOut, required=True, metadata={"description": "付款拆分：返利抵扣多少、所选付款方式付多少"})
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
    id = Int(required=True, metadata={"description": "发货记录 id（GET /shipments/{id} 查看物流轨迹）"})
    seq = Int(required=True, metadata={"description": "本订单第几次发货（从 1 起）"})
    carrier = Str(required=True, metadata={"description": "承运商，如 顺丰速运"})
    tracking_no = Str(required=True, metadata={"description": "运单号"})
    shipped_at = DateTime(required=True)
    lines = Nested(ShipmentLineOut, many=True, required=True)
    tracking = Nested(TrackingOut, required=True, metadata={"description": "物流跟踪（快递100 推送的轨迹）"})


class ShipmentDetailOut(ShipmentOut):
    order_no = Str(required=True)


class OrderOut(Schema):
    order_no = Str(required=True)
    status = Str(required=True, validate=one_of(ORDER_STATUSES, STATUS_LABELS))
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
