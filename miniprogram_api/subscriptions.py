from flask import g

from app.notify import dealer_alerts
from app.notify.schemas import ConsentsOut, SubscriptionsIn, TemplatesOut
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("subscriptions", __name__, url_prefix="/subscriptions", description="订阅消息")


@blp.get("/templates")
@blp.response(200, TemplatesOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def templates():
    """可订阅的消息模板（把 template_id 传给 wx.requestSubscribeMessage）"""
    return {"templates": dealer_alerts.subscribe_templates()}


@blp.post("")
@blp.arguments(SubscriptionsIn)
@blp.response(200, ConsentsOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def subscribe(body):
    """记录用户在 wx.requestSubscribeMessage 中同意的模板：每个一次性模板 +1 条可发送次数"""
    counts = dealer_alerts.record_consents(user=g.user, template_ids=body["template_ids_accepted"])
    return {"consents": counts}
