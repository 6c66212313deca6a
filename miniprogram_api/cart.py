from flask import g

from app.orders import cart
from app.orders.schemas import CartItemIn, CartOut
from miniprogram_api.blueprint import MpBlueprint
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.presenters import priced_line

blp = MpBlueprint("cart", __name__, url_prefix="/cart", description="购物车")


def cart_view(quote):
    return {
        "items": [{**priced_line(line), "available": max(line.available, 0)} for line in quote.lines],
        "totals": quote.totals(),
        "problems": quote.problems,
    }


@blp.get("")
@blp.response(200, CartOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_cart():
    """查看购物车（按当前价格和库存重新计算）"""
    return cart_view(cart.get_cart(user=g.user))


@blp.put("/items/<id:sku_id>")
@blp.arguments(CartItemIn)
@blp.response(200, CartOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def put_item(body, sku_id):
    """设置购物车中某商品的数量"""
    cart.set_cart_item(user=g.user, sku_id=sku_id, qty=body["qty"])
    return cart_view(cart.get_cart(user=g.user))


@blp.delete("/items/<id:sku_id>")
@blp.response(200, CartOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def delete_item(sku_id):
    """从购物车移除商品"""
    cart.remove_cart_item(user=g.user, sku_id=sku_id)
    return cart_view(cart.get_cart(user=g.user))
