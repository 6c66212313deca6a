"""How an order ends on the dealer's side: cancelled before approval, or completed when the
dealer confirms receipt of a fully shipped order (or the system does, some days after the
last shipment). Each is one action of `app.orders.states`."""
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.database import write_transaction
from app.dealers.access import check_may_act
from app.extensions import db
from app.funds import service as funds
from app.kernel.clock import utcnow
from app.orders import states
from app.orders.models import Order
from app.orders.queries import lock_dealer_order


def cancel_order(*, user, order_no, reason=None):
    """Dealer cancels an order before approval: stock and credit are released.

    Raises 404 for another dealer's order, 409 `order_not_cancellable` after approval.
    """
    with write_transaction() as session:
        account = funds.lock_account(session, user.dealer_id)
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        states.transition(session, order, "cancel", actor=user, reason=reason or "经销商取消订单", account=account)
    return order


def confirm_receipt(*, user, order_no):
    """The dealer (owner or buyer) confirms a fully shipped order arrived: `completed`.

    Raises 404 for another dealer's order, 403 for a viewer, 409 `order_not_shipped`
    unless the order is `shipped` (a second confirmation is a 409 too).
    """
    with write_transaction() as session:
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        states.transition(session, order, "confirm_receipt", actor=user, reason="经销商确认收货")
    return order


def auto_complete_orders(*, days=None, now=None):
    """Complete every order shipped (in full) more than `days` ago (default
    ORDER_AUTO_COMPLETE_DAYS) that the dealer has not confirmed. Idempotent: an order is
    completed once, and running twice (or on two workers at once) completes nothing more.
    Returns the completed order numbers."""
    days = current_app.config["ORDER_AUTO_COMPLETE_DAYS"] if days is None else days
    cutoff = (now or utcnow()) - timedelta(days=days)
    due = db.session.execute(
        select(Order.id).where(Order.status.in_(states.from_states("auto_complete")), Order.shipped_at < cutoff)
        .order_by(Order.id)
    ).scalars().all()
    db.session.rollback()
    completed = []
    for order_id in due:
        with write_transaction() as session:
            order = session.execute(
                select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
            ).scalar_one()
            if not states.allows("auto_complete", order.status):
                continue  # the dealer confirmed meanwhile, or another run got here first
            states.transition(session, order, "auto_complete", actor=states.SYSTEM_ACTORS["auto_complete"],
                              reason=f"发货满 {days} 天，系统自动确认收货")
            completed.append(order.order_no)
    return completed
