"""Marketing materials for the dealer: browse and search what is addressed to it, open one
(with download links), and get what to forward to its customer group."""
from flask import g

from app.materials import dealer
from app.materials.files import cover_url, file_url, thumb_url
from app.materials.schemas import MaterialListQuery, MaterialOut, MaterialPage, ShareOut
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("materials", __name__, url_prefix="/materials", description="营销素材")


def _summary(material):
    return {
        "id": material.id, "kind": material.kind, "kind_label": material.kind_label, "title": material.title,
        "summary": material.summary, "tags": material.tags, "thumb_url": thumb_url(material),
        "published_at": material.published_at, "valid_to": material.valid_to,
    }


def _detail(material):
    file = None
    if material.file_key:
        file = {
            "url": file_url(material), "download_url": file_url(material, download=True),
            "file_name": material.file_name, "content_type": material.file_content_type,
            "size": material.file_size, "width": material.width, "height": material.height,
        }
    return {
        **_summary(material), "valid_from": material.valid_from, "body_html": material.body_html,
        "link_url": material.link_url, "cover_url": cover_url(material), "file": file,
        "miniprogram": {"appid": material.mp_appid, "path": "/" + material.mp_path} if material.mp_path else None,
    }


@blp.get("")
@blp.arguments(MaterialListQuery, location="query")
@blp.response(200, MaterialPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_materials(query):
    """发给本经销商的素材（已发布、今天有效；新发布的在前），可按标题/标签搜索、按标签和类型筛选"""
    materials, total, tags = dealer.list_for_dealer(
        dealer_id=g.user.dealer_id, q=(query.get("q") or "").strip() or None, tag=query.get("tag") or None,
        kind=query.get("kind"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": [_summary(m) for m in materials], "page": query["page"], "page_size": query["page_size"],
            "total": total, "tags": [{"tag": tag, "count": count} for tag, count in tags]}


@blp.get("/<id:material_id>")
@blp.response(200, MaterialOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_material(material_id):
    """素材详情：图文正文、文件预览与下载地址（有时效）、小程序卡片"""
    return _detail(dealer.get_for_dealer(dealer_id=g.user.dealer_id, material_id=material_id))


@blp.post("/<id:material_id>/share")
@blp.response(200, ShareOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def share(material_id):
    """转发到客户群：返回转发所需的内容（按类型：图片地址、视频、文件，或 onShareAppMessage 的 {title, path, imageUrl}），并记一次转发"""
    _material, payload = dealer.share_material(user=g.user, material_id=material_id)
    return payload
