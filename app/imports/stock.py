"""Stock in Excel: one row per (warehouse, SKU); an import sets the on-hand count.

Typical use is a stocktake: export a warehouse, type the counted quantities into 在库数量,
import with a reason (e.g. "11 月盘点"). On-hand never goes below what open orders have
reserved; such a row is refused like any other bad row, and then nothing is imported.
The stock rows are locked in (sku_id, warehouse_id) order, the order every stock writer
uses, so an import and an order submitted at the same moment queue instead of deadlocking.
"""
from dataclasses import dataclass

from sqlalchemy import select

from app.catalog.models import Sku
from app.extensions import db
from app.imports import sheets
from app.imports.result import Change, run_import
from app.imports.sheets import CellError, Column, Errors, FileRejected
from app.inventory import service as inventory
from app.inventory.models import Stock, Warehouse
from app.kernel.errors import DomainError
from app.kernel.permissions import require

KIND = "stock"
TITLE = "库存"
EXPORT_PERMISSIONS = ("stock.view",)
IMPORT_PERMISSIONS = ("stock.edit",)
MAX_QTY = inventory.MAX_ON_HAND

COLUMNS = (
    Column("warehouse", "仓库编码", 12),
    Column("warehouse_name", "仓库名称", 14, reference=True),
    Column("sku_code", "商品编码", 16),
    Column("sku_name", "商品名称", 24, reference=True),
    Column("spec", "规格", 14, reference=True),
    Column("unit", "单位", 8, reference=True),
    Column("on_hand", "在库数量", 12),
    Column("reserved", "已预留", 10, reference=True),
    Column("available", "可用", 10, reference=True),
)

NOTES = (
    "库存导入说明",
    "· 每行是一个仓库里一个商品的在库数量；导入把在库数量设为文件里的数（不是加减）。灰色表头的列只供参考，导入时忽略。",
    "· 在库数量为不小于 0 的整数，且不能少于“已预留”（已下单未发货占用的数量）。",
    "· 导入时必须填写调整原因（如“11 月盘点”），每一处改动都会记入审计日志。",
    "· 文件里没有的仓库和商品不变。任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
)

STOCK = Stock.__table__


def warehouses():
    return db.session.execute(select(Warehouse).order_by(Warehouse.priority, Warehouse.code)).scalars().all()


def export_rows(*, staff, warehouse_code=None):
    """Rows for `COLUMNS`, read from the database in batches (a brand's 100,000 stock rows are
    never all in memory); an unknown `warehouse_code` raises NotFound before the first row."""
    query = (
        select(Warehouse.code, Warehouse.name, Sku.code, Sku.name, Sku.spec, Sku.unit, Stock.on_hand, Stock.reserved)
        .join(Warehouse, Warehouse.id == Stock.warehouse_id)
        .join(Sku, Sku.id == Stock.sku_id)
        .order_by(Warehouse.priority, Warehouse.code, Sku.code)
        .execution_options(yield_per=sheets.EXPORT_BATCH)
    )
    if warehouse_code:
        if db.session.execute(select(Warehouse.id).where(Warehouse.code == warehouse_code)).first() is None:
            from app.kernel.errors import NotFound

            raise NotFound("仓库不存在")
        query = query.where(Warehouse.code == warehouse_code)
    return ((wh_code, wh_name, code, name, spec, unit, on_hand, reserved, on_hand - reserved)
            for wh_code, wh_name, code, name, spec, unit, on_hand, reserved in db.session.execute(query))


def export_workbook(*, staff, warehouse_code=None):
    return sheets.workbook_file(TITLE, COLUMNS, export_rows(staff=staff, warehouse_code=warehouse_code), notes=NOTES)


@dataclass
class _Row:
    number: int
    warehouse: str
    sku_code: str
    on_hand: int


def parse_rows(sheet, errors):
    parsed = []
    for number, cells in sheet.rows:
        values, bad = {}, False
        for key, parse in (
            ("warehouse", lambda v: sheets.text(v, "仓库编码", max_len=32)),
            ("sku_code", lambda v: sheets.text(v, "商品编码", max_len=32)),
            ("on_hand", lambda v: sheets.integer(v, "在库数量", minimum=0, maximum=MAX_QTY)),
        ):
            try:
                values[key] = parse(cells.get(key))
            except CellError as exc:
                errors.add(number, str(exc))
                bad = True
        if not bad:
            parsed.append(_Row(number=number, **values))
    return parsed


def _chunks(values, size=900):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate a stock workbook and, with `apply`, set every row's on-hand in one transaction.

    Each changed row is a stocktake through the inventory service's `adjust_stock` (its checks
    — never below reserved —, its stock movement and `stock.adjust` audit entry, with `reason`,
    which is required). A preview runs the same and rolls back. Raises `FileRejected` /
    `RowsRejected` (every bad row: unknown warehouse or SKU, not a whole number, negative,
    duplicate, below reserved) and then writes nothing. The file gets one `import` entry.
    """
    require(staff, "stock.edit", "你的角色无权导入库存")
    reason = (reason or "").strip()
    if not reason:
        raise FileRejected("请填写调整原因（如“11 月盘点”），库存的每次修改都要有原因", "import_reason_missing")
    sheet = sheets.read_sheet(data, COLUMNS)
    errors = Errors()
    rows = parse_rows(sheet, errors)
    return run_import(staff=staff, kind=KIND, title=TITLE, filename=filename, sheet=sheet, apply=apply,
                      errors=errors, reason=reason,
                      work=lambda session, errors, result: _run(session, staff, rows, errors, result, reason))


def _run(session, staff, rows, errors, result, reason):
    houses = {w.code: w for w in session.execute(select(Warehouse)).scalars()}
    skus = {}
    for chunk in _chunks(sorted({r.sku_code for r in rows})):
        skus.update({s.code: s for s in session.execute(
            select(Sku.id, Sku.code, Sku.name, Sku.unit).where(Sku.code.in_(chunk)))})
    wanted, seen = {}, {}
    for row in rows:
        house, sku = houses.get(row.warehouse), skus.get(row.sku_code)
        if house is None:
            errors.add(row.number, f"仓库编码“{row.warehouse}”不存在，可用：" + "、".join(sorted(c for c, w in houses.items() if w.active)))
        elif not house.active:
            errors.add(row.number, f"仓库 {row.warehouse} 已停用，不能导入库存")
            house = None
        if sku is None:
            errors.add(row.number, f"商品编码“{row.sku_code}”不存在")
        if house is None or sku is None:
            continue
        key = (sku.id, house.id)
        if key in seen:
            errors.add(row.number, f"仓库 {row.warehouse} 的商品 {row.sku_code} 与第 {seen[key]} 行重复")
            continue
        seen[key] = row.number
        wanted[key] = (row, house, sku)

    # Every stock row of these SKUs, locked up front in (sku_id, warehouse_id) order like every
    # writer (then `adjust_stock` locks rows this transaction already holds): no deadlock with
    # an order reserving several of them.
    current = {}
    for chunk in _chunks(sorted({sku_id for sku_id, _ in wanted})):
        query = (select(STOCK.c.sku_id, STOCK.c.warehouse_id, STOCK.c.on_hand, STOCK.c.reserved)
                 .where(STOCK.c.sku_id.in_(chunk)).order_by(STOCK.c.sku_id, STOCK.c.warehouse_id)
                 .with_for_update())
        for sku_id, warehouse_id, on_hand, reserved in session.execute(query):
            current[(sku_id, warehouse_id)] = (on_hand, reserved)

    for key, (row, house, sku) in sorted(wanted.items()):  # (sku_id, warehouse_id): the lock order
        on_hand, reserved = current.get(key, (None, 0))
        if row.on_hand == (on_hand or 0):
            result.unchanged += 1
            continue
        try:
            inventory.adjust_stock(staff=staff, sku_id=sku.id, warehouse_id=house.id, reason=reason,
                                   on_hand=row.on_hand, session=session)
        except DomainError as exc:
            errors.add(row.number, exc.message)
            continue
        result.add(Change(row.number, "create" if on_hand is None else "update", f"{sku.code} {sku.name} · {house.name}",
                          before="" if on_hand is None else f"{on_hand}{sku.unit}", after=f"{row.on_hand}{sku.unit}"))
    result.changes.sort(key=lambda change: change.row)


