"""Returns (after-sales) for the dealer: file a request for a shipped order, follow it."""
from flask import g

from app.returns import service
from app.funds.models import REFUND_METHOD_LABELS, REFUND_STATUS_LABELS
from app.returns.models import REFUND_LABELS, STATUS_LABELS
from app.returns.schemas import ReturnIn, ReturnListQuery, ReturnOut, ReturnPage, WithdrawIn
from app.storage.service import url_for as upload_url
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("returns", __name__, url_prefix="", description="退货售后")


def _summary(request):
    return {
        "id": request.id, "return_no": request.return_no, "order_no": request.order.order_no,
        "status": request.status, "status_label": STATUS_LABELS[request.status], "refund_fen": request.refund_fen,
        "refund_status": request.refund_status, "refunded_fen": request.refunded_fen, "line_count": len(request.lines),
        "created_at": request.created_at,
    }


def _refund(request):
    items = [
        {"method": r.method, "method_label": REFUND_METHOD_LABELS[r.method], "amount_fen": r.amount_fen,
         "status": r.status, "status_label": REFUND_STATUS_LABELS[r.status], "refunded_at": r.refunded_at,
         "created_at": r.created_at}
        for r in request.refunds
    ]
    return {
        "status": request.refund_status, "status_label": REFUND_LABELS.get(request.refund_status, "—"),
        "amount_fen": sum(receipt.amount_fen for receipt in request.receipts), "refunded_fen": request.refunded_fen,
        "items": items,
    }


def _detail(request):
    return {
        **_summary(request),
        "reason": request.reason,
        "decision_reason": request.decision_reason,
        "lines": [
            {"sku_id": line.sku_id, "sku_code": line.sku_code, "name": line.name, "spec": line.spec, "unit": line.unit,
             "qty": line.qty, "unit_price_fen": line.unit_price_fen, "amount_fen": line.amount_fen,
             "received_qty": line.received_qty}
            for line in request.lines
        ],
        "photos": [
            {"id": p.upload.id, "url": upload_url(p.upload), "content_type": p.upload.content_type,
             "width": p.upload.width, "height": p.upload.height}
            for p in request.photos
        ],
        "events": [
            {"from_status": e.from_status, "to_status": e.to_status, "label": STATUS_LABELS[e.to_status],
             "actor_type": e.actor_type, "actor_name": e.actor_name, "reason": e.reason, "at": e.created_at}
            for e in request.events
        ],
        "refund": _refund(request),
    }


@blp.post("/orders/<order_no:order_no>/returns")
@blp.arguments(ReturnIn)
@blp.response(201, ReturnOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def create(body, order_no):
    """申请退货：已发货（含部分发货、已完成）订单的商品，附原因与照片（先用 POST /uploads 上传）"""
    request = service.create_return(
        user=g.user, order_no=order_no, lines=body["lines"], reason=body["reason"], photo_ids=body["photo_ids"],
    )
    return _detail(service.get_return(dealer_id=g.user.dealer_id, return_id=request.id))


@blp.get("/returns")
@blp.arguments(ReturnListQuery, location="query")
@blp.response(200, ReturnPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_returns(query):
    """我的退货申请（新的在前）"""
    rows, total = service.list_returns(
        dealer_id=g.user.dealer_id, status=query.get("status"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": [_summary(r) for r in rows], "page": query["page"], "page_size": query["page_size"],
            "total": total}


@blp.get("/returns/<id:return_id>")
@blp.response(200, ReturnOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_return(return_id):
    """退货申请详情：明细、照片、处理记录"""
    return _detail(service.get_return(dealer_id=g.user.dealer_id, return_id=return_id))


@blp.post("/returns/<id:return_id>/withdraw")
@blp.arguments(WithdrawIn, required=False)
@blp.response(200, ReturnOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def withdraw(body, return_id):
    """撤回退货申请：仅待审核的申请可以撤回"""
    service.withdraw_return(user=g.user, return_id=return_id, reason=body.get("reason"))
    return _detail(service.get_return(dealer_id=g.user.dealer_id, return_id=return_id))
