"""Policies for the dealer: the list (unread first), one policy (marks it read), acknowledgement."""
from flask import g

from app.policies import dealer
from app.policies.models import CATEGORY_LABELS
from app.policies.schemas import AckOut, PolicyListQuery, PolicyOut, PolicyPage
from app.storage import get_storage
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("policies", __name__, url_prefix="/policies", description="政策通知")


@blp.get("")
@blp.arguments(PolicyListQuery, location="query")
@blp.response(200, PolicyPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_policies(query):
    """发给本经销商的政策（未读在前，再按发布时间新的在前），可按分类筛选"""
    items, total, unread = dealer.list_for_dealer(
        user=g.user, category=query.get("category"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": items, "unread": unread, "page": query["page"], "page_size": query["page_size"], "total": total}


@blp.get("/<id:policy_id>")
@blp.response(200, PolicyOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_policy(policy_id):
    """政策详情（最新版本、本次更新、附件），同时记为当前账号已读"""
    policy, version, acked = dealer.open_for_dealer(user=g.user, policy_id=policy_id)
    files = dealer.attachment_rows(version)
    storage = get_storage()
    return {
        "id": policy.id, "title": version.title, "category": version.category,
        "category_label": CATEGORY_LABELS[version.category], "published_at": version.published_at,
        "version": version.version, "read": True, "ack_required": version.ack_required, "acked": acked,
        "body_html": version.body_html, "effective_from": version.effective_from, "effective_to": version.effective_to,
        "changes": version.changes,
        "attachments": [
            {**a, "url": storage.url_for(files[a["id"]].storage_key)} for a in version.attachments if a["id"] in files
        ],
    }


@blp.post("/<id:policy_id>/ack")
@blp.response(200, AckOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def acknowledge(policy_id):
    """确认已阅读并知悉当前版本（仅需要确认的政策；重复确认返回第一次的结果）"""
    ack = dealer.acknowledge(user=g.user, policy_id=policy_id)
    return {"policy_id": ack.policy_id, "version": ack.version, "acked": True, "acked_at": ack.acked_at}
