"""Stock reservations. `available = on_hand - reserved` never goes below zero.

Rows are locked in (sku_id, warehouse_id) order, so two transactions touching the same
SKUs queue behind each other instead of deadlocking; every shortfall is reported at once.
"""
import functools

from sqlalchemy import BigInteger, bindparam, cast, delete, func, insert, select, update

from app.extensions import db
from app.inventory.models import Reservation, Stock, Warehouse

STOCK = Stock.__table__
RESERVATIONS = Reservation.__table__


@functools.cache
def _lock_statement():
    return (
        select(STOCK.c.sku_id, STOCK.c.warehouse_id, STOCK.c.on_hand, STOCK.c.reserved, Warehouse.priority)
        .join(Warehouse, Warehouse.id == STOCK.c.warehouse_id)
        .where(STOCK.c.sku_id.in_(bindparam("sku_ids", expanding=True)))
        .order_by(STOCK.c.sku_id, STOCK.c.warehouse_id)
        .with_for_update(of=STOCK)
    )


def lock_stock(session, sku_ids):
    """{sku_id: [(warehouse_id, available), ...]} with the rows locked, warehouses by priority."""
    rows = session.connection().execute(_lock_statement(), {"sku_ids": sorted(set(sku_ids))}).all()
    return locked_by_sku(rows)


def locked_by_sku(rows):
    """`lock_stock`'s answer from rows with sku_id, warehouse_id, on_hand, reserved, priority."""
    by_sku = {}
    for row in sorted(rows, key=lambda r: (r.priority, r.warehouse_id)):
        by_sku.setdefault(row.sku_id, []).append((row.warehouse_id, row.on_hand - row.reserved))
    return by_sku


@functools.cache
def locked_stock_cte():
    """`lock_stock`'s statement (binds :sku_ids) as a CTE named `locked_stock`, for a
    statement that locks the stock rows and reads something beside them; the rows are
    locked in the same (sku_id, warehouse_id) order."""
    return _lock_statement().cte("locked_stock")


def total_available(locked, sku_id):
    return sum(max(avail, 0) for _, avail in locked.get(sku_id, ()))


def allocate(locked, pairs):
    """Split each (sku_id, qty) over warehouses in priority order.

    Returns [(sku_id, warehouse_id, qty)]. The caller has checked that everything fits.
    """
    allocations = []
    for sku_id, qty in pairs:
        remaining = qty
        for warehouse_id, avail in locked.get(sku_id, ()):
            take = min(remaining, avail)
            if take > 0:
                allocations.append((sku_id, warehouse_id, take))
                remaining -= take
            if remaining == 0:
                break
        if remaining:
            raise AssertionError(f"allocate() called with a shortfall on SKU {sku_id}")
    return allocations


@functools.cache
def _move_reserved_statement():
    return (
        update(STOCK)
        .where(STOCK.c.sku_id == bindparam("s"), STOCK.c.warehouse_id == bindparam("w"))
        .values(reserved=STOCK.c.reserved + bindparam("q"))
    )


def reserve(session, order_id, allocations):
    """Reserve allocated units for an order (rows already locked by `lock_stock`)."""
    if not allocations:
        return
    ordered = sorted(allocations)
    session.connection().execute(_move_reserved_statement(), [{"s": s, "w": w, "q": q} for s, w, q in ordered])
    session.connection().execute(
        insert(RESERVATIONS),
        [{"order_id": order_id, "sku_id": s, "warehouse_id": w, "qty": q} for s, w, q in ordered],
    )


def release(session, order_id):
    """Give back everything an order still has reserved."""
    held = session.connection().execute(
        select(RESERVATIONS.c.sku_id, RESERVATIONS.c.warehouse_id, RESERVATIONS.c.qty)
        .where(RESERVATIONS.c.order_id == order_id)
        .order_by(RESERVATIONS.c.sku_id, RESERVATIONS.c.warehouse_id)
    ).all()
    if not held:
        return
    lock_stock(session, [row.sku_id for row in held])
    session.connection().execute(
        _move_reserved_statement(), [{"s": r.sku_id, "w": r.warehouse_id, "q": -r.qty} for r in held]
    )
    session.connection().execute(delete(RESERVATIONS).where(RESERVATIONS.c.order_id == order_id))


@functools.cache
def _available_statement():
    available = cast(func.sum(STOCK.c.on_hand - STOCK.c.reserved), BigInteger)
    return (
        select(STOCK.c.sku_id, available.label("available"))
        .where(STOCK.c.sku_id.in_(bindparam("sku_ids", expanding=True)))
        .group_by(STOCK.c.sku_id)
    )


# PostgreSQL: the same sums as `_available_statement` for `sku_id = ANY(array)`. One array
# parameter keeps the text constant, so the server plans it once (a prepared statement).
_AVAILABLE_ANY_SQL = (
    "SELECT sku_id, CAST(sum(on_hand - reserved) AS BIGINT) FROM stock"
    " WHERE sku_id = ANY(CAST(%s AS bigint[])) GROUP BY sku_id"
)


def available_now(sku_ids):
    """{sku_id: units available across warehouses}: the latest committed figures, read
    outside the caller's transaction. For display only (the catalogue); never decide a
    write on them.

    On PostgreSQL this is the catalogue's one per-request query, so it skips SQLAlchemy's
    Connection and transaction: a pooled connection in autocommit runs one prepared
    statement (one round trip, no BEGIN or ROLLBACK; a third of the Python time).
    """
    if not sku_ids:
        return {}
    if db.engine.dialect.name != "postgresql":
        rows = db.session.connection().execute(_available_statement(), {"sku_ids": list(sku_ids)})
        return {sku_id: available for sku_id, available in rows}
    pooled = db.engine.raw_connection()
    try:
        conn = pooled.driver_connection
        conn.autocommit = True
        with conn.cursor() as cursor:
            ids = "{" + ",".join(str(int(sku_id)) for sku_id in sku_ids) + "}"  # cheaper to send than a list
            cursor.execute(_AVAILABLE_ANY_SQL, (ids,), prepare=True)
            available = dict(cursor.fetchall())
        conn.autocommit = False
    except BaseException:
        pooled.invalidate()  # never hand an autocommit (or broken) connection back to the pool
        raise
    finally:
        pooled.close()
    return available


# --- shipments: reserved units leave the warehouse ------------------------------------------

@functools.cache
def _reservations_statement():
    return (
        select(RESERVATIONS.c.sku_id, RESERVATIONS.c.warehouse_id, RESERVATIONS.c.qty)
        .join(Warehouse, Warehouse.id == RESERVATIONS.c.warehouse_id)
        .where(RESERVATIONS.c.order_id == bindparam("order_id"))
        .order_by(RESERVATIONS.c.sku_id, Warehouse.priority, RESERVATIONS.c.warehouse_id)
    )


def plan_shipment(session, order_id, wanted, warehouse_id=None):
    """Where the units of a shipment come from: the warehouses holding this order's
    reservations (by warehouse priority, or only `warehouse_id`).

    `wanted` is {sku_id: qty}. Locks the SKUs' stock rows (in the usual order) and returns
    ([(sku_id, warehouse_id, qty)], {sku_id: units reserved where allowed} for every SKU
    whose reservation there is short). Writes nothing; `deduct_shipped` does.
    """
    if not wanted:
        return [], {}
    lock_stock(session, list(wanted))
    held = session.connection().execute(_reservations_statement(), {"order_id": order_id}).all()
    takes, short = [], {}
    for sku_id, qty in sorted(wanted.items()):
        rows = [r for r in held if r.sku_id == sku_id and (warehouse_id is None or r.warehouse_id == warehouse_id)]
        remaining = qty
        for row in rows:
            take = min(remaining, row.qty)
            if take > 0:
                takes.append((sku_id, row.warehouse_id, take))
                remaining -= take
        if remaining:
            short[sku_id] = sum(r.qty for r in rows)
    return takes, short


@functools.cache
def _deduct_statement():
    return (
        update(STOCK)
        .where(STOCK.c.sku_id == bindparam("s"), STOCK.c.warehouse_id == bindparam("w"))
        .values(on_hand=STOCK.c.on_hand - bindparam("q"), reserved=STOCK.c.reserved - bindparam("q"))
    )


@functools.cache
def _consume_reservation_statement():
    return (
        update(RESERVATIONS)
        .where(RESERVATIONS.c.order_id == bindparam("o"), RESERVATIONS.c.sku_id == bindparam("s"),
               RESERVATIONS.c.warehouse_id == bindparam("w"))
        .values(qty=RESERVATIONS.c.qty - bindparam("q"))
    )


@functools.cache
def _drop_reservation_statement():
    return delete(RESERVATIONS).where(
        RESERVATIONS.c.order_id == bindparam("o"), RESERVATIONS.c.sku_id == bindparam("s"),
        RESERVATIONS.c.warehouse_id == bindparam("w"),
    )


def deduct_shipped(session, order_id, takes):
    """Units of `plan_shipment`'s answer leave: on_hand and reserved drop together in each
    warehouse (available stays as it was) and the order's reservations shrink (a used-up
    one is deleted). The stock rows were locked by `plan_shipment`."""
    if not takes:
        return
    ordered = sorted(takes)
    conn = session.connection()
    conn.execute(_deduct_statement(), [{"s": s, "w": w, "q": q} for s, w, q in ordered])
    held = {(r.sku_id, r.warehouse_id): r.qty
            for r in conn.execute(_reservations_statement(), {"order_id": order_id})}
    used_up = [{"o": order_id, "s": s, "w": w} for s, w, q in ordered if held.get((s, w)) == q]
    partly = [{"o": order_id, "s": s, "w": w, "q": q} for s, w, q in ordered if held.get((s, w)) != q]
    if used_up:
        conn.execute(_drop_reservation_statement(), used_up)
    if partly:
        conn.execute(_consume_reservation_statement(), partly)
