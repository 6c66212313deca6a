from flask import g, jsonify

from app.catalog import service
from app.catalog.schemas import CategoryList, ProductOut, ProductPage, ProductQuery
from miniprogram_api.blueprint import MpBlueprint
from miniprogram_api.auth import BEARER_DOC, dealer_user_required

blp = MpBlueprint("catalog", __name__, url_prefix="", description="商品目录（按本经销商价格与可见范围）")


@blp.get("/categories")
@blp.response(200, CategoryList)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def categories():
    """商品分类"""
    return {"items": service.list_categories()}


@blp.get("/products")
@blp.arguments(ProductQuery, location="query")
@blp.response(200, ProductPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def products(query):
    """商品列表：本经销商可见的商品、价格与库存"""
    items, total = service.list_products(dealer=g.user.dealer, **query)
    # The service already builds exactly ProductPage's shape; skipping the marshmallow
    # dump of 20 nested items is most of this hot route's Python time (see README, 性能).
    return jsonify({"items": items, "page": query["page"], "page_size": query["page_size"], "total": total})


@blp.get("/products/<id:sku_id>")
@blp.response(200, ProductOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def product(sku_id):
    """商品详情"""
    return service.get_product(dealer=g.user.dealer, sku_id=sku_id)
