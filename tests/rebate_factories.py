"""Orders, shipments, payments and returns dated where a rebate test needs them.

They are written as rows (the order, shipment and return services stamp "now"); the
end-to-end test in tests/test_rebates.py goes through the real services instead.
"""
from datetime import date, datetime, time, timedelta
from itertools import count

from app.extensions import db
from app.funds.models import Payment
from app.orders.models import Order, OrderLine, Shipment, ShipmentLine
from app.kernel.clock import BUSINESS_TZ
from app.returns.models import ReturnLine, ReturnRequest
from tests.factories import add

_numbers = count(1)


def china(day, hour=10, minute=0, second=0):
    """An aware datetime at China wall-clock time on `day` (a date or 'YYYY-MM-DD')."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime.combine(day, time(hour, minute, second), tzinfo=BUSINESS_TZ)


def order(world, dealer, lines, *, at, status="shipped", placed_by=None, paid_fen=0):
    """An order of `lines` [(sku, qty, unit_price_fen)] placed at `at`."""
    n = next(_numbers)
    user = placed_by or (world.a_buyer if dealer.id == world.dealer_a.id else world.b_owner)
    total = sum(qty * price for _, qty, price in lines)
    row = add(Order(
        order_no=f"SO{at:%Y%m%d}{n:04d}", dealer_id=dealer.id, placed_by_id=user.id, status=status,
        payment_method="wechat", subtotal_fen=total, discount_fen=0, shipping_fen=0, total_fen=total,
        credit_held_fen=0, paid_fen=paid_fen, ship_contact="张三", ship_phone="13800000001",
        ship_region_code="440100", ship_address="天河路1号", remark="", created_at=at, updated_at=at,
    ))
    for sku, qty, price in lines:
        add(OrderLine(order_id=row.id, sku_id=sku.id, sku_code=sku.code, name=sku.name, spec=sku.spec, unit=sku.unit,
                      qty=qty, list_price_fen=price, unit_price_fen=price, amount_fen=qty * price, price_source="list",
                      shipped_qty=0))
    db.session.flush()
    db.session.refresh(row)
    return row


def ship(world, order_row, quantities, *, at, tracking_no=None):
    """A shipment at `at` of {sku: qty} (every line of the order when `quantities` is None)."""
    by_sku = {line.sku_id: line for line in order_row.lines}
    quantities = quantities or {line.sku_id: line.qty for line in order_row.lines}
    seq = len(order_row.shipments) + 1
    shipment = add(Shipment(order_id=order_row.id, seq=seq, carrier="顺丰速运",
                            tracking_no=tracking_no or f"SF{order_row.id:06d}{seq:02d}", shipped_by_name="仓管",
                            created_at=at))
    for sku_id, qty in ((getattr(k, "id", k), v) for k, v in quantities.items()):
        line = by_sku[sku_id]
        add(ShipmentLine(shipment_id=shipment.id, order_line_id=line.id, sku_id=sku_id,
                         warehouse_id=world.wh_south.id, qty=qty))
        line.shipped_qty += qty
    db.session.flush()
    db.session.refresh(order_row)
    return shipment


def pay(order_row, amount_fen, *, at, paid_at_missing=False):
    """A payment of `amount_fen` applied to the order at `at`."""
    n = next(_numbers)
    payment = add(Payment(dealer_id=order_row.dealer_id, order_id=order_row.id, method="wechat", amount_fen=amount_fen,
                          applied_fen=amount_fen, transaction_id=f"4200{n:020d}", out_trade_no=f"{order_row.order_no}P{n:02d}",
                          paid_at=None if paid_at_missing else at, created_at=at))
    order_row.paid_fen += amount_fen
    db.session.flush()
    return payment


def return_received(order_row, sku, qty, *, at):
    """A return of `qty` of `sku` from the order, received back into stock at `at`."""
    n = next(_numbers)
    line = next(line for line in order_row.lines if line.sku_id == sku.id)
    request = add(ReturnRequest(
        return_no=f"RT{order_row.order_no[2:]}-{n}", order_id=order_row.id, dealer_id=order_row.dealer_id,
        requested_by_id=order_row.placed_by_id, status="received", reason="破损", refund_fen=qty * line.unit_price_fen,
        refund_status="pending_ledger", received_at=at, created_at=at - timedelta(days=1), updated_at=at,
    ))
    add(ReturnLine(return_id=request.id, order_line_id=line.id, sku_id=sku.id, sku_code=sku.code, name=sku.name,
                   spec=sku.spec, unit=sku.unit, qty=qty, unit_price_fen=line.unit_price_fen,
                   amount_fen=qty * line.unit_price_fen))
    db.session.flush()
    return request
