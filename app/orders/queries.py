"""Reading a dealer's orders, and locking one for a dealer's write (cancel, receipt, payments,
returns). Staff-side lists and pages are `app.orders.staff_views`."""
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.kernel.errors import NotFound
from app.orders.models import Order, Shipment, ShipmentLine


def get_order(*, dealer_id, order_no):
    """The dealer's own order (lines, events, shipments); another dealer's order number answers 404."""
    order = db.session.execute(
        select(Order).where(Order.order_no == order_no, Order.dealer_id == dealer_id)
        .options(selectinload(Order.shipments).selectinload(Shipment.lines).selectinload(ShipmentLine.order_line))
    ).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在", "order_not_found")
    return order


def list_orders(*, dealer_id, status=None, page=1, page_size=20):
    """One page of the dealer's orders, newest first, lines loaded: (orders, total)."""
    where = [Order.dealer_id == dealer_id]
    if status:
        where.append(Order.status == status)
    total = db.session.execute(select(func.count()).select_from(Order).where(*where)).scalar_one()
    orders = db.session.execute(
        select(Order).options(selectinload(Order.lines)).where(*where).order_by(Order.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return orders, total


def lock_dealer_order(session, *, dealer_id, order_no):
    """The dealer's own order, locked (FOR UPDATE) and freshly read for the caller's write
    transaction. Another dealer's order number raises the same 404 as an unknown one."""
    order = session.execute(
        select(Order).where(Order.order_no == order_no, Order.dealer_id == dealer_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在", "order_not_found")
    return order


def last_order_at(dealer_id_column):
    """When the dealer in `dealer_id_column` last ordered (any status), as a correlated subquery:
    one probe of `ix_orders_dealer_created_at` per dealer, where a `max() ... GROUP BY` over all
    orders reads a brand's million rows (0.85 s → 26 ms for 5,000 dealers). NULL: never ordered."""
    return (select(func.max(Order.created_at)).where(Order.dealer_id == dealer_id_column)
            .correlate_except(Order).scalar_subquery())

