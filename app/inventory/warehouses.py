"""Warehouses (仓库): the list with what each holds, and the brand's writes — create, edit
(code, name, region, shipping priority), deactivate and reactivate.

A warehouse is deactivated only once it is empty: no units on hand, none reserved for an
order. A deactivated warehouse keeps its history (movements, shipments, receipts name it)
and takes no stock: adjustments, stock imports and return receipts refuse it
(`inventory.adjust_stock`, `imports.stock`, `returns.receive_return`). Writes need `warehouses.manage`, are audited (entity `warehouse`) and
check their input with Chinese messages.
"""
import re

from sqlalchemy import func, select

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Region
from app.extensions import db
from app.inventory.models import Reservation, Stock, Warehouse
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.permissions import require

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
PRIORITY_MAX = 9999


def list_warehouses_with_stock():
    """Every warehouse (active first, then by priority) with {"warehouse", "on_hand", "reserved",
    "skus"}: units on hand and reserved, and how many SKUs it holds."""
    figures = {r.warehouse_id: r for r in db.session.execute(
        select(Stock.warehouse_id, func.sum(Stock.on_hand).label("on_hand"), func.sum(Stock.reserved).label("reserved"),
               func.count().filter(Stock.on_hand > 0).label("skus"))
        .group_by(Stock.warehouse_id)).all()}
    houses = db.session.execute(select(Warehouse).order_by(Warehouse.active.desc(), Warehouse.priority, Warehouse.id)).scalars()
    return [{"warehouse": w, "on_hand": int(figures[w.id].on_hand or 0) if w.id in figures else 0,
             "reserved": int(figures[w.id].reserved or 0) if w.id in figures else 0,
             "skus": int(figures[w.id].skus or 0) if w.id in figures else 0} for w in houses]


def _fields(session, code, name, region_code, priority, warehouse_id=None):
    code = inputs.text(code, field="code", label="仓库编码", max_len=32)
    if not CODE_PATTERN.fullmatch(code):
        raise inputs.invalid("code", "仓库编码只能包含字母、数字、_ 和 -，不超过 32 个字符")
    name = inputs.text(name, field="name", label="仓库名称", max_len=64)
    region_code = inputs.text(region_code, field="region_code", label="所在地区", max_len=6)
    if session.get(Region, region_code) is None:
        raise inputs.invalid("region_code", f"地区编码 {region_code} 不存在，请先在“地区”页添加")
    priority = inputs.integer(priority, field="priority", label="发货优先级", minimum=0, maximum=PRIORITY_MAX)
    taken = session.execute(select(Warehouse.name).where(Warehouse.code == code, Warehouse.id != (warehouse_id or 0))).first()
    if taken:
        raise DomainError("warehouse_code_taken", f"仓库编码 {code} 已被“{taken.name}”使用", 409, {"field": "code"})
    return {"code": code, "name": name, "region_code": region_code, "priority": priority}


def create_warehouse(*, staff, code, name, region_code, priority=100):
    """A new, active warehouse. 422 for an empty or malformed code or name, an unknown region
    or a bad priority; 409 for a taken code. Audited as `warehouse.create`."""
    require(staff, "warehouses.manage")
    with write_transaction() as session:
        fields = _fields(session, code, name, region_code, priority)
        house = Warehouse(**fields, active=True)
        session.add(house)
        session.flush()
        audit.record(session, actor=staff, action="warehouse.create", entity_type="warehouse", entity_id=house.id,
                     label=f"{house.code} {house.name}", after=fields)
    return house


def _lock(session, warehouse_id):
    house = session.execute(select(Warehouse).where(Warehouse.id == warehouse_id).with_for_update()).scalar_one_or_none()
    if house is None:
        raise DomainError("warehouse_not_found", "仓库不存在", 404)
    return house


def update_warehouse(*, staff, warehouse_id, code, name, region_code, priority):
    """Change a warehouse's code, name, region or priority (a new code is what stock imports
    name it by from then on). Audited as `warehouse.update` with only what changed."""
    require(staff, "warehouses.manage")
    with write_transaction() as session:
        house = _lock(session, warehouse_id)
        fields = _fields(session, code, name, region_code, priority, warehouse_id=house.id)
        before, after = audit.changed({k: getattr(house, k) for k in fields}, fields)
        if after:
            for key, value in fields.items():
                setattr(house, key, value)
            audit.record(session, actor=staff, action="warehouse.update", entity_type="warehouse", entity_id=house.id,
                         label=f"{house.code} {house.name}", before=before, after=after)
    return house


def set_active(*, staff, warehouse_id, active):
    """Deactivate (`active=False`) or reactivate a warehouse. Deactivating answers 409
    `warehouse_not_empty` while it holds units on hand or reserved for orders, naming them;
    409 when it already is so. Audited as `warehouse.deactivate` / `warehouse.reactivate`."""
    require(staff, "warehouses.manage")
    with write_transaction() as session:
        house = _lock(session, warehouse_id)
        if house.active == bool(active):
            raise DomainError("already", f"仓库 {house.name} 已经是{'启用' if house.active else '停用'}状态", 409)
        if not active:
            # The stock rows locked (as an order's reservation locks them), then summed.
            rows = session.execute(select(Stock.on_hand, Stock.reserved).where(Stock.warehouse_id == house.id)
                                   .order_by(Stock.sku_id).with_for_update()).all()
            on_hand, reserved = sum(r.on_hand for r in rows), sum(r.reserved for r in rows)
            orders = session.execute(select(func.count(func.distinct(Reservation.order_id)))
                                     .where(Reservation.warehouse_id == house.id)).scalar_one()
            if on_hand or reserved or orders:
                held = f"在手库存 {on_hand}" + (f"，{orders} 个订单预留 {reserved}" if orders or reserved else "")
                raise DomainError("warehouse_not_empty", f"仓库 {house.name} 仍有库存（{held}），不能停用；"
                                  "请先发货或取消相关订单，再把库存调出或盘点为 0", 409,
                                  {"on_hand": on_hand, "reserved": reserved, "orders": orders})
        house.active = bool(active)
        audit.record(session, actor=staff, action="warehouse.reactivate" if active else "warehouse.deactivate",
                     entity_type="warehouse", entity_id=house.id, label=f"{house.code} {house.name}",
                     before={"active": not house.active}, after={"active": house.active})
    return house


def get_warehouse(*, staff, warehouse_id):
    require(staff, "warehouses.manage")
    house = db.session.get(Warehouse, warehouse_id)
    if house is None:
        raise DomainError("warehouse_not_found", "仓库不存在", 404)
    return house
