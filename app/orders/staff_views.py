"""What the console shows staff about orders: the filtered list and one order's detail.

Read-only; every state change goes through `app.orders.states.transition`.
Which orders a staff member sees follows `scope_to_staff` (a rep: their own dealers'
orders; another rep's order answers 404, as if it did not exist).
"""
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from app.dealers.models import Dealer
from app.dealers.access import scope_to_staff
from app.extensions import db
from app.funds.service import credit_summary
from app.inventory.models import Reservation, Warehouse
from app.kernel.clock import business_day_start
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import can
from app.orders import states
from app.orders.models import ORDER_STATUSES, Order, OrderLine, Shipment, ShipmentLine
from app.staff.models import Staff

ORDER_LIST_PAGE_SIZE = 50
# Besides the statuses: pending orders a rep approved over the credit limit.
AWAITING_FINANCE = "awaiting_finance"


def _require_viewer(staff):
    if not can(staff, "orders.view"):
        raise DomainError("forbidden", "你的角色无权查看订单", 403)


def _like(text):
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"




@dataclass
class OrderListPage:
    """One page of the console's order list. `total` counts the matching orders up to
    `ORDER_COUNT_CAP`; past it `total_capped` is set and the page says "10,000+" (counting a
    brand's million orders on every page view costs more than the page). `more` says whether
    an older page follows; the ids bound the page for the keyset links."""
    rows: list
    total: int
    total_capped: bool
    more: bool

    @property
    def first_id(self):
        return self.rows[0][0].id if self.rows else None

    @property
    def last_id(self):
        return self.rows[-1][0].id if self.rows else None


ORDER_COUNT_CAP = 10_000


def list_orders_for_staff(*, staff, status=None, q=None, order_no=None, day_from=None, day_to=None, page=1,
                          before=None, after=None, page_size=None):
    """One page of orders `staff` may see, newest first, as an `OrderListPage` of
    (order, dealer_code, dealer_name) rows.

    `status` is an order status or `awaiting_finance`; `q` matches the dealer's code or name;
    `order_no` a part of the order number; `day_from`/`day_to` are China dates (inclusive).
    The page is the one after order id `before` (older) or before order id `after` (newer) —
    keyset pages, as fast at the thousandth page as at the first — or else page `page` by
    offset (a link someone kept).
    """
    _require_viewer(staff)
    page_size = page_size or ORDER_LIST_PAGE_SIZE
    if status is not None and status not in (*ORDER_STATUSES, AWAITING_FINANCE):
        raise DomainError("invalid_filter", "订单状态参数有误", 400)
    where = []
    if status == AWAITING_FINANCE:
        where += [Order.status == "pending_approval", Order.rep_approved_by_id.is_not(None)]
    elif status:
        where.append(Order.status == status)
    if q:
        where.append(or_(Dealer.code.ilike(_like(q), escape="\\"), Dealer.name.ilike(_like(q), escape="\\")))
    if order_no:
        where.append(Order.order_no.ilike(_like(order_no.upper()), escape="\\"))
    if day_from:
        where.append(Order.created_at >= business_day_start(day_from))
    if day_to:
        where.append(Order.created_at < business_day_start(day_to + timedelta(days=1)))
    base = scope_to_staff(
        select(Order, Dealer.code, Dealer.name).join(Dealer, Dealer.id == Order.dealer_id).where(*where), staff
    )
    counted = db.session.execute(
        select(func.count()).select_from(base.with_only_columns(Order.id).limit(ORDER_COUNT_CAP + 1).subquery())
    ).scalar_one()
    query = base.options(selectinload(Order.lines)).limit(page_size + 1)
    if after is not None:
        rows = db.session.execute(query.where(Order.id > after).order_by(Order.id.asc())).all()
        rows = rows[:page_size][::-1]
        more = True  # the page we came from is older
    else:
        if before is not None:
            query = query.where(Order.id < before)
        else:
            query = query.offset((page - 1) * page_size)
        rows = db.session.execute(query.order_by(Order.id.desc())).all()
        more, rows = len(rows) > page_size, rows[:page_size]
    return OrderListPage(rows=rows, total=min(counted, ORDER_COUNT_CAP), total_capped=counted > ORDER_COUNT_CAP, more=more)


@dataclass
class OrderDetail:
    order: Order
    dealer: Dealer
    credit: dict
    rep_approved_by: str | None
    shipments: list
    # {order_line_id: [(warehouse name, units still reserved)]}
    reserved: dict
    # [(warehouse id, name)] holding this order's reservations, for the ship form
    warehouses: list
    actions: set = field(default_factory=set)


def get_order_for_staff(*, staff, order_no):
    """One order with everything its console page shows, and the actions `staff` may take
    on it now (`approve`, `reject`, `ship`). 404 for an order the staff member may not see."""
    _require_viewer(staff)
    row = db.session.execute(
        scope_to_staff(select(Order, Dealer).join(Dealer, Dealer.id == Order.dealer_id)
                       .where(Order.order_no == order_no), staff)
        .options(selectinload(Order.lines), selectinload(Order.events))
    ).first()
    if row is None:
        raise NotFound("订单不存在，或不是你负责的经销商的订单", "order_not_found")
    order, dealer = row
    shipments = db.session.execute(
        select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.seq)
        .options(selectinload(Shipment.lines).selectinload(ShipmentLine.order_line))
    ).scalars().all()
    held = db.session.execute(
        select(OrderLine.id, Warehouse.id, Warehouse.name, Reservation.qty)
        .join(Reservation, (Reservation.order_id == OrderLine.order_id) & (Reservation.sku_id == OrderLine.sku_id))
        .join(Warehouse, Warehouse.id == Reservation.warehouse_id)
        .where(OrderLine.order_id == order.id).order_by(OrderLine.id, Warehouse.priority, Warehouse.id)
    ).all()
    reserved, warehouses = {}, {}
    for line_id, warehouse_id, name, qty in held:
        reserved.setdefault(line_id, []).append((name, qty))
        warehouses[warehouse_id] = name
    approver = db.session.get(Staff, order.rep_approved_by_id) if order.rep_approved_by_id else None
    detail = OrderDetail(
        order=order, dealer=dealer, credit=credit_summary(dealer.id), shipments=shipments,
        rep_approved_by=approver.name if approver else None, reserved=reserved, warehouses=list(warehouses.items()),
    )
    detail.actions = allowed_actions(staff, order)
    return detail


def allowed_actions(staff, order):
    """What `staff` may do to `order` now, by role and status (the services check again)."""
    actions = set()
    if states.allows("approve", order.status):
        rep_step, finance_step = can(staff, "orders.approve"), can(staff, "orders.review_credit")
        if rep_step and (finance_step or not order.awaiting_finance):
            actions |= {"approve", "reject"}
        elif rep_step:
            actions.add("reject")
        elif finance_step and order.awaiting_finance:
            actions |= {"approve", "reject"}
    if states.allows("ship_partial", order.status) and can(staff, "orders.ship"):
        actions.add("ship")
    return actions
