from flask import current_app, g

from app.catalog import service
from app.catalog.schemas import CategoryList, ProductOut, ProductPage, ProductQuery
from miniprogram_api import presenters
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
    if query.get("after"):
        query["page"] = service.parse_after(query["after"])[0]
    priced, available = service.catalogue_page(dealer=g.user.dealer, **query)
    # The hottest read: rendered straight to JSON bytes, the priced part once per cached
    # page (see presenters.product_page_json and bench/README.md, 性能); same ProductPage shape.
    body = presenters.product_page_json(priced, available, page=query["page"], page_size=query["page_size"])
    return current_app.response_class(body, mimetype="application/json")


@blp.get("/products/<id:sku_id>")
@blp.response(200, ProductOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def product(sku_id):
    """商品详情"""
    return service.get_product(dealer=g.user.dealer, sku_id=sku_id)
