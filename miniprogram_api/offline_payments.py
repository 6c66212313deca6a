"""Offline payments (线下转账) for the dealer: submit a transfer voucher, follow finance's decision.

The mini-program uploads the voucher photo first (`wx.uploadFile` to POST /uploads, which
answers its `id`), then sends this JSON with `voucher_id`."""
from flask import g

from app.funds import offline as service
from app.funds.models import OFFLINE_STATUS_LABELS
from app.funds.schemas import OfflineListQuery, OfflinePaymentIn, OfflinePaymentOut, OfflinePaymentPage
from app.storage.service import url_for as upload_url
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("offline_payments", __name__, url_prefix="/payments/offline", description="线下转账付款")


def _out(record):
    voucher = record.voucher
    return {
        "id": record.id, "status": record.status, "status_label": OFFLINE_STATUS_LABELS[record.status],
        "amount_fen": record.amount_fen, "received_fen": record.received_fen, "transfer_date": record.transfer_date,
        "order_no": record.order.order_no if record.order is not None else None, "payer_name": record.payer_name,
        "bank_reference": record.bank_reference, "remark": record.remark, "reason": record.decision_note,
        "voucher": {"id": voucher.id, "url": upload_url(voucher), "content_type": voucher.content_type,
                    "width": voucher.width, "height": voucher.height},
        "created_at": record.created_at, "decided_at": record.decided_at,
    }


@blp.post("")
@blp.arguments(OfflinePaymentIn)
@blp.response(201, OfflinePaymentOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def submit(body):
    """提交线下转账凭证（先用 POST /uploads 上传凭证图片）：付某个订单，或不填订单号作为回款（先冲减应收账款，多出的部分转入预付款）；财务确认到账后入账"""
    record = service.submit_offline_payment(user=g.user, **body)
    return _out(service.get_offline_payment(dealer_id=g.user.dealer_id, payment_id=record.id))


@blp.get("")
@blp.arguments(OfflineListQuery, location="query")
@blp.response(200, OfflinePaymentPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_submissions(query):
    """我提交的线下转账（新的在前）：待确认 / 已确认 / 已驳回（含原因）"""
    rows, total = service.list_offline_payments(
        dealer_id=g.user.dealer_id, status=query.get("status"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": [_out(r) for r in rows], "page": query["page"], "page_size": query["page_size"], "total": total}


@blp.get("/<id:payment_id>")
@blp.response(200, OfflinePaymentOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_submission(payment_id):
    """一笔线下转账的详情与审核结果"""
    return _out(service.get_offline_payment(dealer_id=g.user.dealer_id, payment_id=payment_id))
