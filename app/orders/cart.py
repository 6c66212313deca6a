"""The dealer user's cart: what they mean to order, priced as at checkout, nothing reserved."""
from sqlalchemy import delete, func, select

from app.database import dialect_insert, write_transaction
from app.dealers.access import check_may_act, lock_dealer
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.orders.models import CartItem
from app.pricing.service import Buyer, priced_skus, quote_lines

MAX_CART_ITEMS = 200


def get_cart(*, user):
    """The user's cart priced for their dealer, with every problem (as at checkout)."""
    items = db.session.execute(
        select(CartItem.sku_id, CartItem.qty).where(CartItem.user_id == user.id).order_by(CartItem.updated_at)
    ).all()
    lines = [{"sku_id": i.sku_id, "qty": i.qty} for i in items]
    return quote_lines(db.session, Buyer.of(user.dealer), lines)


def set_cart_item(*, user, sku_id, qty):
    """Put `qty` of a SKU in the cart (replacing what was there). 404 if not orderable."""
    with write_transaction() as session:
        buyer = check_may_act(session, user).buyer
        lock_dealer(session, user.dealer_id)  # a double tap queues instead of racing
        if not priced_skus(session, buyer, [sku_id]):
            raise NotFound("商品不存在或不可订购", "sku_not_found")
        cart = CartItem.__table__
        others = session.execute(
            select(func.count()).select_from(cart).where(cart.c.user_id == user.id, cart.c.sku_id != sku_id)
        ).scalar_one()
        if others >= MAX_CART_ITEMS:
            raise DomainError("cart_full", f"购物车最多 {MAX_CART_ITEMS} 种商品", 422)
        now = utcnow()
        upsert = dialect_insert(session, cart).values(user_id=user.id, sku_id=sku_id, qty=qty, updated_at=now)
        session.execute(upsert.on_conflict_do_update(
            index_elements=[cart.c.user_id, cart.c.sku_id], set_={"qty": qty, "updated_at": now},
        ))


def remove_cart_item(*, user, sku_id):
    with write_transaction() as session:
        check_may_act(session, user)
        deleted = session.execute(
            delete(CartItem).where(CartItem.user_id == user.id, CartItem.sku_id == sku_id)
        ).rowcount
        if not deleted:
            raise NotFound("购物车中没有该商品", "cart_item_not_found")
