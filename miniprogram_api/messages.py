from flask import g

from app.notify import dealer_alerts
from app.notify.schemas import MessageListQuery, MessagePage
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("messages", __name__, url_prefix="/messages", description="消息")


@blp.get("")
@blp.arguments(MessageListQuery, location="query")
@blp.response(200, MessagePage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_messages(query):
    """本经销商的消息（订单审核、驳回、发货、付款提醒；新的在前）"""
    items, total = dealer_alerts.list_messages(
        dealer_id=g.user.dealer_id, page=query["page"], page_size=query["page_size"]
    )
    return {"items": items, "page": query["page"], "page_size": query["page_size"], "total": total}
