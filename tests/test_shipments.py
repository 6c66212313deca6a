"""Shipments: warehouse staff ship approved orders in one or several parcels; stock leaves
the warehouses where it was reserved; the order becomes partially shipped / shipped."""
import threading

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.inventory.models import Reservation, Stock
from app.kernel.errors import DomainError
from app.notify.models import DealerMessage, Outbox
from app.orders import approval as orders
from app.orders.models import Order, OrderEvent, OrderLine, Shipment, ShipmentLine
from app.orders.shipments import ship_order
from app.staff.models import Staff
from tests.factories import auth, set_stock
from tests.helpers import submit


def place(client, world, lines):
    r = submit(client, auth(world.a_buyer), [{"sku_id": sku.id, "qty": qty} for sku, qty in lines])
    assert r.status_code == 201, r.get_json()
    return r.get_json()["order_no"]


def approved(client, world, lines):
    order_no = place(client, world, lines)
    orders.approve_order(staff=world.rep, order_no=order_no)
    return order_no


def order_lines(order_no):
    db.session.expire_all()
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    return order, {line.sku_id: line for line in order.lines}


def stock(sku, warehouse):
    db.session.expire_all()
    row = db.session.get(Stock, (sku.id, warehouse.id))
    return row.on_hand, row.reserved


def reservations(order_id):
    db.session.expire_all()
    return {(r.sku_id, r.warehouse_id): r.qty
            for r in db.session.execute(select(Reservation).where(Reservation.order_id == order_id)).scalars()}


def snapshot(order_no):
    """Everything a refused shipment must leave as it was."""
    db.session.expire_all()
    order, lines = order_lines(order_no)
    return (
        order.status, {s: line.shipped_qty for s, line in lines.items()},
        db.session.execute(select(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved)
                           .order_by(Stock.sku_id, Stock.warehouse_id)).all(),
        reservations(order.id),
        db.session.execute(select(func.count()).select_from(Shipment)).scalar_one(),
        db.session.execute(select(func.count()).select_from(OrderEvent)).scalar_one(),
        db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
        db.session.execute(select(func.count()).select_from(Outbox)).scalar_one(),
    )


def ship(staff, order_no, quantities, carrier="顺丰速运", tracking_no="SF1000000001", **kw):
    _, lines = order_lines(order_no)
    by_line = {lines[sku.id].id: qty for sku, qty in quantities}
    return ship_order(staff=staff, order_no=order_no, quantities=by_line, carrier=carrier, tracking_no=tracking_no,
                      **kw)


def test_partial_then_final_shipment_deducts_reserved_stock_and_moves_the_status(client, world, staff):
    clerk = staff["warehouse"]
    order_no = approved(client, world, [(world.cola, 10), (world.soy, 4)])
    assert stock(world.cola, world.wh_south) == (100, 10)

    first = ship(clerk, order_no, [(world.cola, 6)])
    order, lines = order_lines(order_no)
    assert (order.status, order.shipped_at) == ("partially_shipped", None)
    assert (lines[world.cola.id].shipped_qty, lines[world.soy.id].shipped_qty) == (6, 0)
    assert stock(world.cola, world.wh_south) == (94, 4)  # on hand and reserved drop together
    assert reservations(order.id) == {(world.cola.id, world.wh_south.id): 4, (world.soy.id, world.wh_south.id): 4}
    assert (first.seq, first.carrier, first.tracking_no, first.shipped_by_name) == (1, "顺丰速运", "SF1000000001", "仓管")
    assert [(sl.sku_id, sl.warehouse_id, sl.qty) for sl in first.lines] == [(world.cola.id, world.wh_south.id, 6)]

    second = ship(clerk, order_no, [(world.cola, 4), (world.soy, 4)], carrier="京东物流", tracking_no="jd-778899")
    order, lines = order_lines(order_no)
    assert order.status == "shipped" and order.shipped_at is not None
    assert all(line.shipped_qty == line.qty for line in lines.values())
    assert stock(world.cola, world.wh_south) == (90, 0) and stock(world.soy, world.wh_south) == (96, 0)
    assert reservations(order.id) == {}
    assert (second.seq, second.tracking_no) == (2, "JD-778899")

    events = db.session.execute(select(OrderEvent).where(OrderEvent.order_id == order.id)
                                .order_by(OrderEvent.id)).scalars().all()
    assert [(e.from_status, e.to_status, e.actor_type, e.actor_name) for e in events[-2:]] == [
        ("approved", "partially_shipped", "staff", "仓管"), ("partially_shipped", "shipped", "staff", "仓管")]
    assert "顺丰速运 SF1000000001" in events[-2].reason and "已全部发出" in events[-1].reason
    entries = db.session.execute(select(AuditEntry).where(AuditEntry.action == "order.ship")
                                 .order_by(AuditEntry.id)).scalars().all()
    assert [(e.entity_id, e.before, e.after["status"], e.after["tracking_no"], e.staff_id) for e in entries] == [
        (order_no, {"status": "approved"}, "partially_shipped", "SF1000000001", clerk.id),
        (order_no, {"status": "partially_shipped"}, "shipped", "JD-778899", clerk.id)]
    assert entries[1].after["lines"] == {"SKU-COLA": 4, "SKU-SOY": 4}
    # The dealer's message list and the rep's WeCom message, once per shipment.
    messages = db.session.execute(select(DealerMessage.body).where(DealerMessage.event == "order_shipped")
                                  .order_by(DealerMessage.id)).scalars().all()
    assert len(messages) == 2 and "JD-778899" in messages[1]
    rep_rows = db.session.execute(select(Outbox).where(Outbox.event == "order_shipped",
                                                       Outbox.channel == "wecom_app")).scalars().all()
    assert [r.recipient for r in rep_rows] == ["WangYeWu", "WangYeWu"]


def test_a_line_reserved_in_two_warehouses_ships_from_both_in_priority_order(client, world, staff):
    order_no = approved(client, world, [(world.cola, 120)])  # 100 reserved in 华南仓, 20 in 华东仓
    shipment = ship(staff["warehouse"], order_no, [(world.cola, 110)])
    assert sorted((sl.warehouse_id, sl.qty) for sl in shipment.lines) == [(world.wh_south.id, 100), (world.wh_east.id, 10)]
    assert stock(world.cola, world.wh_south) == (0, 0) and stock(world.cola, world.wh_east) == (40, 10)


def test_shipping_from_a_chosen_warehouse_takes_only_what_is_reserved_there(client, world, staff):
    order_no = approved(client, world, [(world.cola, 120)])
    before = snapshot(order_no)
    with pytest.raises(DomainError) as exc:
        ship(staff["warehouse"], order_no, [(world.cola, 30)], warehouse_id=world.wh_east.id)
    assert exc.value.status == 409 and exc.value.code == "reservation_short"
    assert "预留 20" in exc.value.details["problems"][0]["message"]
    assert snapshot(order_no) == before
    ship(staff["warehouse"], order_no, [(world.cola, 20)], warehouse_id=world.wh_east.id)
    assert stock(world.cola, world.wh_east) == (30, 0) and stock(world.cola, world.wh_south) == (100, 100)


def test_over_shipping_is_refused_and_nothing_changes(client, world, staff):
    order_no = approved(client, world, [(world.cola, 5), (world.soy, 2)])
    ship(staff["warehouse"], order_no, [(world.cola, 3)])
    before = snapshot(order_no)
    with pytest.raises(DomainError) as exc:
        ship(staff["warehouse"], order_no, [(world.cola, 3), (world.soy, 3)], tracking_no="SF2000000002")
    assert exc.value.status == 422 and exc.value.code == "shipment_invalid"
    assert {p["code"] for p in exc.value.details["problems"]} == {"over_shipped"}
    assert len(exc.value.details["problems"]) == 2  # every problem at once
    assert "超过待发的 2" in exc.value.message
    assert snapshot(order_no) == before


@pytest.mark.parametrize("quantities,code", [({}, "shipment_invalid"), ({999999: 1}, "shipment_invalid"),
                                             ("bad", "shipment_invalid")])
def test_bad_quantities_are_refused(client, world, staff, quantities, code):
    order_no = approved(client, world, [(world.cola, 5)])
    before = snapshot(order_no)
    with pytest.raises(DomainError) as exc:
        ship_order(staff=staff["warehouse"], order_no=order_no, quantities=quantities, carrier="顺丰速运",
                   tracking_no="SF1000000001")
    assert exc.value.code == code and exc.value.status == 422
    assert snapshot(order_no) == before


def test_negative_and_zero_quantities(client, world, staff):
    order_no = approved(client, world, [(world.cola, 5), (world.soy, 1)])
    with pytest.raises(DomainError):
        ship(staff["warehouse"], order_no, [(world.cola, -1)])
    ship(staff["warehouse"], order_no, [(world.cola, 5), (world.soy, 0)])  # zero lines are skipped
    assert order_lines(order_no)[0].status == "partially_shipped"


@pytest.mark.parametrize("carrier,tracking_no,field", [("", "SF1000000001", "carrier"), ("顺丰速运", "S F", "tracking_no"),
                                                       ("顺" * 33, "SF1000000001", "carrier")])
def test_carrier_and_tracking_number_are_required(client, world, staff, carrier, tracking_no, field):
    order_no = approved(client, world, [(world.cola, 5)])
    with pytest.raises(DomainError) as exc:
        ship(staff["warehouse"], order_no, [(world.cola, 5)], carrier=carrier, tracking_no=tracking_no)
    assert exc.value.status == 422 and field in exc.value.details["fields"]


def test_the_same_tracking_number_cannot_ship_the_order_twice(client, world, staff):
    order_no = approved(client, world, [(world.cola, 5)])
    ship(staff["warehouse"], order_no, [(world.cola, 2)])
    before = snapshot(order_no)
    with pytest.raises(DomainError) as exc:
        ship(staff["warehouse"], order_no, [(world.cola, 2)])
    assert exc.value.code == "tracking_no_used" and snapshot(order_no) == before


@pytest.mark.parametrize("status_setup", ["pending", "rejected", "shipped"])
def test_only_approved_or_partly_shipped_orders_ship(client, world, staff, status_setup):
    order_no = place(client, world, [(world.cola, 5)])
    if status_setup == "rejected":
        orders.reject_order(staff=world.rep, order_no=order_no, reason="不要了")
    if status_setup == "shipped":
        orders.approve_order(staff=world.rep, order_no=order_no)
        ship(staff["warehouse"], order_no, [(world.cola, 5)])
    with pytest.raises(DomainError) as exc:
        ship(staff["warehouse"], order_no, [(world.cola, 1)], tracking_no="SF9999999")
    assert exc.value.status == 409 and exc.value.code == "order_not_shippable"


@pytest.mark.parametrize("role", ["rep", "finance", "marketing"])
def test_only_warehouse_and_admin_may_ship(client, world, staff, role):
    order_no = approved(client, world, [(world.cola, 5)])
    before = snapshot(order_no)
    with pytest.raises(DomainError) as exc:
        ship(staff[role], order_no, [(world.cola, 5)])
    assert exc.value.status == 403 and snapshot(order_no) == before
    ship(staff["admin"], order_no, [(world.cola, 5)])
    assert order_lines(order_no)[0].status == "shipped"


def test_unknown_order_is_404(client, world, staff):
    with pytest.raises(DomainError) as exc:
        ship_order(staff=staff["warehouse"], order_no="SO209901010001", quantities={1: 1}, carrier="顺丰速运",
                   tracking_no="SF1000000001")
    assert exc.value.status == 404


# --- concurrency (PostgreSQL) -----------------------------------------------------------------

@pytest.mark.postgres
def test_two_clerks_shipping_the_same_order_at_once_never_over_ship(pg_app, pg_world):
    from app.staff.service import create_staff

    w = pg_world
    set_stock(w.cola, w.wh_south, 100)
    db.session.commit()
    clerks = [create_staff(username=f"cang{i}", name=f"仓管{i}", role="warehouse", password="long-enough-1").id
              for i in range(4)]
    client = pg_app.test_client()
    order_no = approved(client, w, [(w.cola, 10), (w.soy, 3)])
    _, lines = order_lines(order_no)
    everything = {lines[w.cola.id].id: 10, lines[w.soy.id].id: 3}
    barrier = threading.Barrier(len(clerks))
    results = [None] * len(clerks)

    def clerk_ships(i):
        with pg_app.app_context():
            barrier.wait()
            try:
                results[i] = ship_order(staff=db.session.get(Staff, clerks[i]), order_no=order_no,
                                        quantities=everything, carrier="顺丰速运", tracking_no=f"SF{i}0000001").seq
            except DomainError as exc:
                results[i] = exc.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=clerk_ships, args=(i,)) for i in range(len(clerks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == [1, "order_not_shippable", "order_not_shippable", "order_not_shippable"]
    order, lines = order_lines(order_no)
    assert order.status == "shipped" and [line.shipped_qty for line in lines.values()] == [10, 3]
    assert stock(w.cola, w.wh_south) == (90, 0)
    assert db.session.execute(select(func.sum(ShipmentLine.qty))).scalar_one() == 13
    assert reservations(order.id) == {}


@pytest.mark.postgres
def test_concurrent_partial_shipments_add_up_exactly(pg_app, pg_world):
    """Ten clerks each ship 2 of an order of 15: seven succeed (14), the rest are refused."""
    from app.staff.service import create_staff

    w = pg_world
    clerk_id = create_staff(username="cang", name="仓管", role="warehouse", password="long-enough-1").id
    order_no = approved(pg_app.test_client(), w, [(w.soy, 15)])
    _, lines = order_lines(order_no)
    line_id = lines[w.soy.id].id
    barrier = threading.Barrier(10)
    results = [None] * 10

    def clerk_ships(i):
        with pg_app.app_context():
            barrier.wait()
            try:
                ship_order(staff=db.session.get(Staff, clerk_id), order_no=order_no, quantities={line_id: 2},
                           carrier="德邦快递", tracking_no=f"DB{i:06d}")
                results[i] = "ok"
            except DomainError as exc:
                results[i] = exc.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=clerk_ships, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("ok") == 7 and results.count("shipment_invalid") == 3
    order, lines = order_lines(order_no)
    assert order.status == "partially_shipped" and lines[w.soy.id].shipped_qty == 14
    assert stock(w.soy, w.wh_south) == (86, 1)
    assert db.session.execute(select(func.count()).select_from(OrderLine)
                              .where(OrderLine.shipped_qty > OrderLine.qty)).scalar_one() == 0
