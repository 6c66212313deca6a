"""Rebates for the dealer: balance, history, progress in the current period, one document."""
from flask import g

from app.rebates import dealer_view
from app.rebates.schemas import DocumentDetailOut, RebatesOut
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("rebates", __name__, url_prefix="/rebates", description="返利")


@blp.get("")
@blp.response(200, RebatesOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def rebates():
    """返利余额、返利单与返利流水，以及本期进度（还差多少到下一档、到时可得多少）"""
    return dealer_view.dealer_rebates(dealer_id=g.user.dealer_id)


@blp.get("/<id:document_id>")
@blp.response(200, DocumentDetailOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def document(document_id):
    """一张返利单及其明细（计入的发货、订单与退货）"""
    doc = dealer_view.get_dealer_document(dealer_id=g.user.dealer_id, document_id=document_id)
    return {**dealer_view.document_summary(doc), "window_start": doc.window_start, "window_end": doc.window_end,
            "lines": doc.lines}
