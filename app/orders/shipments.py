"""Shipments: warehouse staff send an approved order in one or several parcels.

`ship_order` is one transaction: lock the order row (a second clerk shipping the same
order waits here, then sees the first one's shipment), check the quantities against
what is still to ship, lock the SKUs' stock rows and take the units from the warehouses
holding the order's reservations (on_hand and reserved drop together, the reservation
shrinks), write the shipment and its lines, raise `order_lines.shipped_qty`, and move the
order to `partially_shipped` / `shipped` (`app.orders.states`: event, audit entry
`order.ship`, `order.transitioned`), then publish `shipment.sent` (the dealer and the rep
are told by its subscribers). Any problem raises before anything is written.

A credit order's shipment turns its credit hold into receivable, in the same transaction:
the hold shrinks by the shipped value and the ledger posts receivable +shipped value
(ref "shipment", the shipment's id), so the dealer's exposure (receivable + held) does
not move. The dealer's account row is locked before the order row (the ledger's lock
order, as submit, cancel and reject take them). The shipped value is the share of what
credit pays (total − rebate) that the shipped goods make up, from the cumulative shipped
amounts, rounded half up once: the shipments of an order add up to its hold exactly, and
the last one releases whatever is left.
"""
import re
from fractions import Fraction

from sqlalchemy import func, select

from app.database import write_transaction
from app.extensions import db
from app.funds import ledger
from app.funds import service as funds
from app.inventory import service as inventory
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import share_of
from app.kernel.permissions import can
from app.kernel.events import publish
from app.orders import states
from app.orders.models import Order, OrderLine, Shipment, ShipmentLine

CARRIER_MAX = 32
TRACKING_NO = re.compile(r"^[A-Za-z0-9-]{4,40}$")
MAX_QTY = 1_000_000
# Offered in the console's carrier field; any other name may be typed.
COMMON_CARRIERS = ("顺丰速运", "京东物流", "中通快递", "圆通速递", "韵达快递", "申通快递", "德邦快递", "中国邮政 EMS",
                   "自有车辆配送")


def _require_shipper(staff):
    if not can(staff, "orders.ship"):
        raise DomainError("forbidden", "你没有发货的权限（仅仓库与管理员）", 403)


def _clean_carrier(carrier, tracking_no):
    carrier = " ".join((carrier or "").split())
    tracking_no = (tracking_no or "").strip().upper()
    fields = {}
    if not carrier:
        fields["carrier"] = ["请填写承运商"]
    elif len(carrier) > CARRIER_MAX:
        fields["carrier"] = [f"承运商名称不超过 {CARRIER_MAX} 个字"]
    if not TRACKING_NO.match(tracking_no):
        fields["tracking_no"] = ["运单号应为 4–40 位字母、数字或 -"]
    if fields:
        raise DomainError("validation_error", "；".join(m for ms in fields.values() for m in ms), 422, {"fields": fields})
    return carrier, tracking_no


def ship_order(*, staff, order_no, quantities, carrier, tracking_no, warehouse_id=None):
    """Ship `quantities` ({order_line_id: qty}; zeros are skipped) of an approved or partly
    shipped order, from the warehouses where its stock is reserved (only `warehouse_id`
    when given). Returns the `Shipment`.

    Raises 403 for roles other than warehouse/admin, 404 for an unknown order, 409
    `order_not_shippable` (status), 422 `validation_error` (carrier, tracking number),
    422 `shipment_invalid` with every problem in `details.problems` (no quantities, a line
    not of this order, more than still to ship), 409 `tracking_no_used` (this carrier and
    number already shipped this order), 409 `reservation_short` (not reserved in that
    warehouse). Nothing is written when it raises.
    """
    _require_shipper(staff)
    carrier, tracking_no = _clean_carrier(carrier, tracking_no)
    if warehouse_id is not None and (type(warehouse_id) is not int or warehouse_id < 1):
        raise DomainError("validation_error", "发货仓库参数有误", 422)
    with write_transaction() as session:
        # Which dealer and how paid never change: read them unlocked to take the locks in order.
        found = session.execute(
            select(Order.dealer_id, Order.payment_method).where(Order.order_no == order_no)
        ).first()
        if found is None:
            raise NotFound("订单不存在", "order_not_found")
        account = funds.lock_account(session, found.dealer_id) if found.payment_method == "credit" else None
        order = session.execute(
            select(Order).where(Order.order_no == order_no).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if order is None:
            raise NotFound("订单不存在", "order_not_found")
        states.require(order, "ship_partial")
        lines = session.execute(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
            .execution_options(populate_existing=True)
        ).scalars().all()
        wanted = _check_quantities(lines, quantities)
        if session.execute(
            select(Shipment.id).where(Shipment.order_id == order.id, Shipment.carrier == carrier,
                                      Shipment.tracking_no == tracking_no)
        ).first():
            raise DomainError("tracking_no_used", f"运单号 {carrier} {tracking_no} 已登记在本订单的发货记录中", 409)

        by_sku = {line.sku_id: line for line in lines}
        takes, short = inventory.plan_shipment(
            session, order.id, {line.sku_id: wanted[line.id] for line in lines if line.id in wanted}, warehouse_id
        )
        if short:
            problems = [
                {"code": "reservation_short", "order_line_id": by_sku[sku_id].id, "sku_id": sku_id,
                 "message": f"{by_sku[sku_id].name}：{'该仓库' if warehouse_id else '各仓库'}为本订单预留 {reserved} "
                            f"{by_sku[sku_id].unit}，不够发 {wanted[by_sku[sku_id].id]} {by_sku[sku_id].unit}"}
                for sku_id, reserved in sorted(short.items())
            ]
            raise DomainError("reservation_short", "所选仓库中为本订单预留的库存不足，请换一个仓库或减少数量", 409,
                              {"problems": problems})
        inventory.deduct_shipped(session, order.id, takes)

        now = utcnow()
        seq = session.execute(
            select(func.coalesce(func.max(Shipment.seq), 0)).where(Shipment.order_id == order.id)
        ).scalar_one() + 1
        shipment = Shipment(order_id=order.id, seq=seq, carrier=carrier, tracking_no=tracking_no,
                            shipped_by_id=staff.id, shipped_by_name=staff.name, created_at=now)
        session.add(shipment)
        session.flush()
        for sku_id, wh_id, qty in takes:
            session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=by_sku[sku_id].id, sku_id=sku_id,
                                     warehouse_id=wh_id, qty=qty))
        for line in lines:
            line.shipped_qty += wanted.get(line.id, 0)
        done = all(line.shipped_qty == line.qty for line in lines)
        if done:
            order.shipped_at = now
        if account is not None:
            _hold_to_receivable(session, account, order, lines, shipment, staff=staff)
        units = sum(wanted.values())
        shipped_lines = {line.sku_code: wanted[line.id] for line in lines if line.id in wanted}
        states.transition(
            session, order, "ship_full" if done else "ship_partial", actor=staff,
            reason=f"第 {seq} 次发货：{carrier} {tracking_no}，共 {units} 件" + ("，已全部发出" if done else ""),
            audit_after={"shipment": seq, "carrier": carrier, "tracking_no": tracking_no, "lines": shipped_lines},
        )
        publish(session, "shipment.sent", order=order, carrier=carrier, tracking_no=tracking_no)
    return shipment


def receivable_due(order, lines):
    """How much of a credit order's hold its shipments so far (`lines`' shipped_qty) have
    turned into receivable: the shipped goods' share of what credit pays, rounded half up."""
    credit_pays = order.payable_fen
    if all(line.shipped_qty == line.qty for line in lines):
        return credit_pays
    goods = sum(line.amount_fen for line in lines)
    if goods <= 0:
        return 0
    shipped = sum(Fraction(line.amount_fen * line.shipped_qty, line.qty) for line in lines)
    return share_of(credit_pays, shipped, goods)


def _hold_to_receivable(session, account, order, lines, shipment, *, staff):
    """Release the hold for what this shipment sent and post it as receivable (see the
    module docstring). `account` was locked before the order."""
    credit_pays = order.payable_fen
    already = credit_pays - order.credit_held_fen
    amount = min(max(receivable_due(order, lines) - already, 0), order.credit_held_fen)
    if not amount:
        return
    balances = ledger.lock_balances(session, order.dealer_id)  # the row `account` locked: no wait
    ledger.post(session, balances, [ledger.Movement(
        "receivable", amount, "shipment", shipment.id, f"订单 {order.order_no} 第 {shipment.seq} 次发货",
    )], actor=staff, actor_type="staff")
    account.receivable_fen = balances.receivable
    funds.release_credit(session, account, amount_fen=amount, order_id=order.id,
                         note=f"第 {shipment.seq} 次发货，转为应收账款")
    order.credit_held_fen -= amount


def _check_quantities(lines, quantities):
    """{order_line_id: qty > 0} of a valid request, or 422 listing every problem."""
    if not isinstance(quantities, dict):
        raise DomainError("shipment_invalid", "发货数量格式有误", 422)
    by_id = {line.id: line for line in lines}
    wanted, problems = {}, []
    for line_id, qty in quantities.items():
        line = by_id.get(line_id)
        if line is None:
            problems.append({"code": "unknown_line", "order_line_id": line_id, "message": "该商品行不属于本订单"})
            continue
        if type(qty) is not int or qty < 0 or qty > MAX_QTY:
            problems.append({"code": "bad_qty", "order_line_id": line_id, "message": f"{line.name}：发货数量应为非负整数"})
            continue
        if qty > line.remaining_qty:
            problems.append({
                "code": "over_shipped", "order_line_id": line_id, "sku_id": line.sku_id,
                "message": f"{line.name}：本次发 {qty} {line.unit}，超过待发的 {line.remaining_qty} {line.unit}",
            })
        elif qty:
            wanted[line_id] = qty
    if not problems and not wanted:
        problems.append({"code": "nothing_to_ship", "message": "请至少填写一行发货数量"})
    if problems:
        raise DomainError("shipment_invalid", "发货数量有误：" + "；".join(p["message"] for p in problems), 422,
                          {"problems": problems})
    return wanted


def list_shipments(order_id):
    """An order's shipments, oldest first, lines loaded (with the order line's snapshot)."""
    from sqlalchemy.orm import selectinload

    return db.session.execute(
        select(Shipment).where(Shipment.order_id == order_id).order_by(Shipment.seq)
        .options(selectinload(Shipment.lines).selectinload(ShipmentLine.order_line))
    ).scalars().all()
