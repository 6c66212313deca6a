import re

from flask import current_app, g, request

from app.funds import payments
from app.funds.schemas import PayOut
from app.kernel.errors import DomainError
from app.orders import closing, queries, submission
from app.orders.schemas import (
    CancelIn,
    CheckoutIn,
    OrderIn,
    OrderListQuery,
    OrderOut,
    OrderPage,
    PreviewOut,
    ShipmentDetailOut,
)
from app.tracking import reading as tracking
from miniprogram_api import presenters
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("orders", __name__, url_prefix="", description="结算与订单")

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,64}$")
ORDER_NO = "<order_no:order_no>"
IDEMPOTENCY_DOC = {
    "parameters": [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": True,
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
            "description": "每次下单生成一个新值（如 UUID）；网络重试时沿用同一个值，不会重复下单",
        }
    ]
}


@blp.post("/checkout/preview")
@blp.arguments(CheckoutIn)
@blp.response(200, PreviewOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def preview(body):
    """结算预览：计算价格、付款拆分（返利抵扣与所选付款方式各付多少），并列出所有问题，不创建订单"""
    result = submission.preview_order(
        user=g.user, lines=body["lines"], address_id=body.get("address_id"), payment_method=body["payment_method"],
        use_rebate_fen=body["use_rebate_fen"],
    )
    quote = result["quote"]
    return {
        "ok": not result["problems"],
        "lines": [presenters.priced_line(line) for line in quote.lines],
        "totals": quote.totals(),
        "payment": result["payment"].as_dict(),
        "problems": result["problems"],
        "credit": result["credit"],
        "address": result["address"],
    }


def _idempotency_key():
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise DomainError("idempotency_key_required", "缺少 Idempotency-Key 请求头，请为每次下单生成唯一值", 400)
    if not IDEMPOTENCY_KEY.match(key):
        raise DomainError(
            "idempotency_key_invalid", "Idempotency-Key 应为 8–64 位字母、数字或 _ . : -", 400
        )
    return key


@blp.post("/orders")
@blp.arguments(OrderIn)
@blp.response(
    201,
    OrderOut,
    headers={
        "Idempotent-Replayed": {
            "description": "true 表示这是同一 Idempotency-Key 的重试，返回的是先前创建的订单",
            "schema": {"type": "string", "enum": ["true"]},
        }
    },
)
@blp.doc(security=BEARER_DOC, **IDEMPOTENCY_DOC)
@dealer_user_required
def submit(body):
    """提交订单（按服务器价格重新计价，锁定库存与信用额度）"""
    key = _idempotency_key()
    order, replayed = submission.submit_order(
        user=g.user,
        lines=body["lines"],
        idempotency_key=key,
        address_id=body.get("address_id"),
        remark=body["remark"],
        payment_method=body["payment_method"],
        use_rebate_fen=body["use_rebate_fen"],
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    # Already in OrderOut's shape; the schema documents it and Schemathesis checks it.
    return current_app.response_class(presenters.order_json(order), 201, headers, mimetype="application/json")


@blp.get("/orders")
@blp.arguments(OrderListQuery, location="query")
@blp.response(200, OrderPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_orders(query):
    """我的订单（新的在前）"""
    orders, total = queries.list_orders(
        dealer_id=g.user.dealer_id, status=query.get("status"), page=query["page"],
        page_size=query["page_size"],
    )
    return {
        "items": [presenters.order_summary(o) for o in orders],
        "page": query["page"],
        "page_size": query["page_size"],
        "total": total,
    }


@blp.get(f"/orders/{ORDER_NO}")
@blp.response(200, OrderOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_order(order_no):
    """订单详情：明细、金额与状态记录"""
    return presenters.order(queries.get_order(dealer_id=g.user.dealer_id, order_no=order_no))


@blp.get("/shipments/<id:shipment_id>")
@blp.response(200, ShipmentDetailOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_shipment(shipment_id):
    """一次发货的明细与物流轨迹（快递100 推送，最新的在前，北京时间）；其他经销商的发货记录答 404"""
    shipment, trail = tracking.dealer_shipment(dealer_id=g.user.dealer_id, shipment_id=shipment_id)
    return presenters.shipment_detail(shipment, trail)


@blp.post(f"/orders/{ORDER_NO}/cancel")
@blp.arguments(CancelIn, required=False)
@blp.response(200, OrderOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def cancel(body, order_no):
    """取消订单（仅限审批前），释放库存与信用额度"""
    order = closing.cancel_order(user=g.user, order_no=order_no, reason=body.get("reason"))
    return presenters.order(order)


@blp.post(f"/orders/{ORDER_NO}/pay")
@blp.response(200, PayOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def pay(order_no):
    """微信支付：为订单未付部分创建 JSAPI 预支付单，返回 wx.requestPayment 所需的已签名参数"""
    return payments.start_wechat_payment(user=g.user, order_no=order_no)


@blp.post(f"/orders/{ORDER_NO}/confirm-receipt")
@blp.response(200, OrderOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def confirm_receipt(order_no):
    """确认收货（仅限全部发货后；负责人或采购员），订单变为“已完成”"""
    order = closing.confirm_receipt(user=g.user, order_no=order_no)
    return presenters.order(queries.get_order(dealer_id=g.user.dealer_id, order_no=order.order_no))
