"""Stock reservations. `available = on_hand - reserved` never goes below zero.

Rows are locked in (sku_id, warehouse_id) order, so two transactions touching the same
SKUs queue behind each other instead of deadlocking; every shortfall is reported at once.
"""
from sqlalchemy import select, update

from app.inventory.models import Reservation, Stock, Warehouse


def lock_stock(session, sku_ids):
    """{sku_id: [(warehouse_id, available), ...]} with the rows locked, warehouses by priority."""
    rows = session.execute(
        select(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved, Warehouse.priority)
        .join(Warehouse, Warehouse.id == Stock.warehouse_id)
        .where(Stock.sku_id.in_(sorted(set(sku_ids))))
        .order_by(Stock.sku_id, Stock.warehouse_id)
        .with_for_update(of=Stock)
    ).all()
    by_sku = {}
    for row in sorted(rows, key=lambda r: (r.priority, r.warehouse_id)):
        by_sku.setdefault(row.sku_id, []).append((row.warehouse_id, row.on_hand - row.reserved))
    return by_sku


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


def reserve(session, order_id, allocations):
    """Reserve allocated units for an order (rows already locked by `lock_stock`)."""
    if not allocations:
        return
    for sku_id, warehouse_id, qty in allocations:
        session.execute(
            update(Stock)
            .where(Stock.sku_id == sku_id, Stock.warehouse_id == warehouse_id)
            .values(reserved=Stock.reserved + qty)
            .execution_options(synchronize_session=False)
        )
    session.add_all(
        Reservation(order_id=order_id, sku_id=s, warehouse_id=w, qty=q) for s, w, q in allocations
    )


def release(session, order_id):
    """Give back everything an order still has reserved."""
    allocations = session.execute(
        select(Reservation).where(Reservation.order_id == order_id)
    ).scalars().all()
    keys = sorted((a.sku_id, a.warehouse_id) for a in allocations)
    if keys:
        lock_stock(session, [k[0] for k in keys])
    for alloc in sorted(allocations, key=lambda a: (a.sku_id, a.warehouse_id)):
        session.execute(
            update(Stock)
            .where(Stock.sku_id == alloc.sku_id, Stock.warehouse_id == alloc.warehouse_id)
            .values(reserved=Stock.reserved - alloc.qty)
            .execution_options(synchronize_session=False)
        )
        session.delete(alloc)


def availability(session, sku_ids):
    """{sku_id: available units across warehouses} (no locks; for display)."""
    rows = session.execute(
        select(Stock.sku_id, Stock.on_hand - Stock.reserved).where(Stock.sku_id.in_(list(sku_ids)))
    ).all()
    out = {}
    for sku_id, avail in rows:
        out[sku_id] = out.get(sku_id, 0) + avail
    return out
