"""Stock reservations. `available = on_hand - reserved` never goes below zero.

Rows are locked in (sku_id, warehouse_id) order, so two transactions touching the same
SKUs queue behind each other instead of deadlocking; every shortfall is reported at once.
"""
import functools

from sqlalchemy import (
    BigInteger,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.catalog.models import Sku
from app.database import joined_transaction
from app.extensions import db
from app.inventory.models import Reservation, Stock, StockMovement, Warehouse
from app.kernel import inputs
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require

STOCK = Stock.__table__
RESERVATIONS = Reservation.__table__


def sku_ids_match(column, dialect_name, name="sku_ids"):
    """`column` is one of the ids in the list bound as `name`. PostgreSQL: `= ANY(CAST(:name
    AS BIGINT[]))`, one text whatever the number of ids (prepared once, no re-rendering per
    execute); elsewhere (SQLite has no arrays) an expanding `IN`. Bind a list of ints."""
    if dialect_name == "postgresql":
        return column == any_(cast(bindparam(name), ARRAY(BigInteger)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _lock_statement(dialect_name):
    return (
        select(STOCK.c.sku_id, STOCK.c.warehouse_id, STOCK.c.on_hand, STOCK.c.reserved, Warehouse.priority)
        .join(Warehouse, Warehouse.id == STOCK.c.warehouse_id)
        .where(sku_ids_match(STOCK.c.sku_id, dialect_name))
        .order_by(STOCK.c.sku_id, STOCK.c.warehouse_id)
        .with_for_update(of=STOCK)
    )


def lock_stock(session, sku_ids):
    """{sku_id: [(warehouse_id, available), ...]} with the rows locked, warehouses by priority."""
    conn = session.connection()
    rows = conn.execute(_lock_statement(conn.dialect.name), {"sku_ids": sorted(set(sku_ids))}).all()
    return locked_by_sku(rows)


def locked_by_sku(rows):
    """`lock_stock`'s answer from rows with sku_id, warehouse_id, on_hand, reserved, priority."""
    by_sku = {}
    for row in sorted(rows, key=lambda r: (r.priority, r.warehouse_id)):
        by_sku.setdefault(row.sku_id, []).append((row.warehouse_id, row.on_hand - row.reserved))
    return by_sku


@functools.cache
def locked_stock_cte(dialect_name):
    """`lock_stock`'s statement (binds :sku_ids, see `sku_ids_match`) for the dialect
    `dialect_name` as a CTE named `locked_stock`, for a statement that locks the stock rows
    and reads something beside them; the rows are locked in the same (sku_id,
    warehouse_id) order. A statement around it matching the same :sku_ids must use
    `sku_ids_match` too (one bind, one shape)."""
    return _lock_statement(dialect_name).cte("locked_stock")


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


# PostgreSQL: `reserve` as CTEs of a statement that writes the order too (the order write
# of `app.orders.writing`): the allocations arrive as three arrays, so the text never
# changes (prepared once). The statement around it has a CTE with the new order's `id`.
_RESERVE_CTES = """allocations AS (
    SELECT * FROM unnest(CAST(:alloc_sku_id AS bigint[]), CAST(:alloc_warehouse_id AS bigint[]),
                         CAST(:alloc_qty AS bigint[])) AS a(sku_id, warehouse_id, qty)
), reserved AS (
    UPDATE stock SET reserved = stock.reserved + allocations.qty
    FROM allocations
    WHERE stock.sku_id = allocations.sku_id AND stock.warehouse_id = allocations.warehouse_id
    RETURNING 1
), reservations AS (
    INSERT INTO stock_reservations (order_id, sku_id, warehouse_id, qty)
    SELECT {order}.id, allocations.sku_id, allocations.warehouse_id, allocations.qty FROM {order}, allocations
)"""


@functools.cache
def reserve_ctes(order_cte):
    """`reserve`'s writes as PostgreSQL CTEs (text to put after a `WITH ... ,`) for the order
    whose `id` the CTE `order_cte` returns; bind `reserve_parameters(allocations)`. The
    rows (stock rows) must be locked already (`locked_stock_cte`). The CTE `reserved` has a
    row per stock row moved: the caller checks `SELECT count(*) FROM reserved` equals
    `len(allocations)`."""
    return _RESERVE_CTES.format(order=order_cte)


def reserve_parameters(allocations):
    """The bind parameters of `reserve_ctes` for [(sku_id, warehouse_id, qty)]."""
    return {
        "alloc_sku_id": [s for s, _, _ in allocations],
        "alloc_warehouse_id": [w for _, w, _ in allocations],
        "alloc_qty": [q for _, _, q in allocations],
    }


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


# --- staff: stock figures, manual adjustments, low-stock thresholds -------------------------

STOCK_PAGE_SIZE = 50
MAX_ON_HAND = 10**12


def _sku_available():
    """Units available across warehouses per SKU (what the mini-program's level is based on)."""
    return (
        select(STOCK.c.sku_id, func.sum(STOCK.c.on_hand - STOCK.c.reserved).label("total"))
        .group_by(STOCK.c.sku_id).subquery("sku_available")
    )


def list_stock(*, staff, q=None, sku_id=None, warehouse_id=None, low_only=False, page=1, page_size=STOCK_PAGE_SIZE):
    """One page of stock rows (SKU × warehouse) for the console: (rows, total). Each row has
    sku_id, code, name, spec, unit, status, low_stock_qty, warehouse_id, warehouse_name, on_hand,
    reserved, available and sku_available (all warehouses). `low_only`: SKUs whose available
    units across warehouses are below their threshold — the ones dealers see as 库存紧张/缺货."""
    require(staff, "stock.view", "你的角色无权查看库存")
    totals = _sku_available()
    where = []
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Sku.code.ilike(like, escape="\\"), Sku.name.ilike(like, escape="\\")))
    if sku_id is not None:
        where.append(STOCK.c.sku_id == sku_id)
    if warehouse_id is not None:
        where.append(STOCK.c.warehouse_id == warehouse_id)
    if low_only:
        where.append(totals.c.total < Sku.low_stock_qty)
    base = (
        select(
            Sku.id.label("sku_id"), Sku.code, Sku.name, Sku.spec, Sku.unit, Sku.status, Sku.low_stock_qty,
            Warehouse.id.label("warehouse_id"), Warehouse.name.label("warehouse_name"),
            STOCK.c.on_hand, STOCK.c.reserved, (STOCK.c.on_hand - STOCK.c.reserved).label("available"),
            cast(totals.c.total, BigInteger).label("sku_available"),
        )
        .select_from(STOCK)
        .join(Sku, Sku.id == STOCK.c.sku_id)
        .join(Warehouse, Warehouse.id == STOCK.c.warehouse_id)
        .join(totals, totals.c.sku_id == STOCK.c.sku_id)
        .where(*where)
    )
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.session.execute(
        base.order_by(Sku.code, Warehouse.priority, Warehouse.id).limit(page_size).offset((page - 1) * page_size)
    ).all()
    return rows, total


def adjust_stock(*, staff, sku_id, warehouse_id, reason, delta=None, on_hand=None, session=None):
    """Change a stock row's on-hand units by `delta` (+/-), or set them to a counted `on_hand`
    (a stocktake; exactly one of the two). On-hand never goes below what orders have reserved:
    that answers 409 `below_reserved` and changes nothing. Writes a stock movement and an
    audit entry (`stock.adjust`, on_hand before/after, the reason) in the same transaction.

    The stock row is locked (FOR UPDATE, SQLite: BEGIN IMMEDIATE) like the order path locks it,
    so a concurrent order's reservation and this adjustment queue behind each other.
    Returns the StockMovement."""
    from app.audit import service as audit
    require(staff, "stock.edit", "你的角色无权调整库存")
    reason = inputs.text(reason, field="reason", label="调整原因", max_len=200)
    if (delta in (None, "")) == (on_hand in (None, "")):
        raise inputs.invalid("delta", "请填写调整数量（正数增加、负数减少）或盘点后的在手数量，二选一")
    if delta not in (None, ""):
        delta = inputs.integer(delta, field="delta", label="调整数量", minimum=-MAX_ON_HAND, maximum=MAX_ON_HAND)
        if delta == 0:
            raise inputs.invalid("delta", "调整数量不能为 0")
        kind = "adjust"
    else:
        on_hand = inputs.integer(on_hand, field="on_hand", label="盘点数量", minimum=0, maximum=MAX_ON_HAND)
        kind = "count"
    with joined_transaction(session) as s:
        sku = s.get(Sku, sku_id)
        warehouse = s.get(Warehouse, warehouse_id)
        if sku is None or warehouse is None:
            raise NotFound("商品或仓库不存在", "stock_not_found")
        if not warehouse.active:
            raise DomainError("warehouse_inactive", f"仓库 {warehouse.code} {warehouse.name} 已停用，不能入库或调整库存", 409)
        row = s.connection().execute(
            select(STOCK.c.on_hand, STOCK.c.reserved)
            .where(STOCK.c.sku_id == sku_id, STOCK.c.warehouse_id == warehouse_id).with_for_update()
        ).first()
        before, reserved = (row.on_hand, row.reserved) if row else (0, 0)
        after = before + delta if kind == "adjust" else on_hand
        if after < reserved:
            raise DomainError(
                "below_reserved",
                f"调整后在手数量 {after} 低于已被订单预留的 {reserved}{sku.unit}，不能调整"
                f"（最多可减少 {before - reserved}{sku.unit}）",
                409, {"field": "delta" if kind == "adjust" else "on_hand", "on_hand": before, "reserved": reserved},
            )
        if after == before:
            raise inputs.invalid("on_hand", f"盘点数量与当前在手数量 {before} 相同，无需调整")
        if row is None:
            s.connection().execute(insert(STOCK).values(sku_id=sku_id, warehouse_id=warehouse_id, on_hand=after, reserved=0))
        else:
            s.connection().execute(
                update(STOCK).where(STOCK.c.sku_id == sku_id, STOCK.c.warehouse_id == warehouse_id).values(on_hand=after)
            )
        movement = StockMovement(
            sku_id=sku_id, warehouse_id=warehouse_id, kind=kind, delta=after - before, on_hand_before=before,
            on_hand_after=after, reserved=reserved, reason=reason, staff_id=staff.id, actor_name=staff.name[:64],
        )
        s.add(movement)
        audit.record(s, actor=staff, action="stock.adjust", entity_type="stock", entity_id=f"{sku.code}@{warehouse.code}",
                     label=f"{sku.code} {sku.name} · {warehouse.name}", before={"on_hand": before},
                     after={"on_hand": after}, reason=reason)
    return movement


def list_movements(*, staff, sku_id=None, warehouse_id=None, page=1, page_size=STOCK_PAGE_SIZE):
    """Stock movements, newest first: ([(StockMovement, sku code, sku name, warehouse name)], total)."""
    require(staff, "stock.view", "你的角色无权查看库存")
    query = (
        select(StockMovement, Sku.code, Sku.name, Warehouse.name)
        .join(Sku, Sku.id == StockMovement.sku_id)
        .join(Warehouse, Warehouse.id == StockMovement.warehouse_id)
    )
    if sku_id is not None:
        query = query.where(StockMovement.sku_id == sku_id)
    if warehouse_id is not None:
        query = query.where(StockMovement.warehouse_id == warehouse_id)
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(
        query.order_by(StockMovement.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).all()
    return rows, total


def list_warehouses(active_only=False):
    """Warehouses by priority; `active_only` leaves out deactivated ones (for a form that puts
    stock in)."""
    query = select(Warehouse).order_by(Warehouse.priority, Warehouse.id)
    if active_only:
        query = query.where(Warehouse.active.is_(True))
    return db.session.execute(query).scalars().all()
