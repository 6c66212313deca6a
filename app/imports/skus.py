"""SKUs in Excel: one row per SKU; an import creates new codes and updates existing ones.

Each row goes through the catalogue's own `create_sku` / `update_sku` (their checks, their
audit entries), all inside one transaction: a bad row anywhere and nothing is kept.
"""
from sqlalchemy import select

from app.catalog import service as catalog
from app.catalog.models import SKU_STATUS_LABELS, Category, Sku
from app.extensions import db
from app.imports import sheets
from app.imports.result import Change, run_import
from app.imports.sheets import CellError, Column
from app.kernel.errors import DomainError
from app.kernel.permissions import require

KIND = "skus"
TITLE = "商品"
# The list price is a price: only those who may read both the catalogue and prices.
EXPORT_PERMISSIONS = ("catalog.view", "catalog.prices")  # the sheet carries list prices
IMPORT_PERMISSIONS = ("catalog.edit",)

STATUS_BY_LABEL = {label: value for value, label in SKU_STATUS_LABELS.items()}

COLUMNS = (
    Column("code", "商品编码", 16),
    Column("name", "商品名称", 24),
    Column("spec", "规格", 14),
    Column("unit", "单位", 8),
    Column("category", "分类", 12),
    Column("pack_size", "每箱数量", 10),
    Column("moq", "起订量", 10),
    Column("step", "订购倍数", 10),
    Column("list_price", "目录价（元）", 12),
    Column("low_stock_qty", "低库存阈值", 10),
    Column("status", "状态", 8),
    Column("image_url", "图片地址", 30, required=False),
)

NOTES = (
    "商品导入说明",
    "· 每行一个商品。商品编码已存在的行修改该商品（编码不能改），不存在的行新建商品。",
    "· 分类填分类名称（须已存在）；状态填 在售 或 下架；起订量须是订购倍数的整数倍。",
    "· 目录价（元）：如 12.5、12.50、¥1,234.00；最多两位小数，不四舍五入。",
    "· 文件里没有的商品不变。任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
)

_FIELD_LABELS = {"name": "名称", "spec": "规格", "unit": "单位", "category_id": "分类", "pack_size": "每箱数量",
                 "moq": "起订量", "step": "订购倍数", "list_price_fen": "目录价", "low_stock_qty": "低库存阈值",
                 "status": "状态", "image_url": "图片地址"}


def export_rows(*, staff):
    categories = dict(db.session.execute(select(Category.id, Category.name)).all())
    for sku in db.session.execute(select(Sku).order_by(Sku.code).execution_options(yield_per=sheets.EXPORT_BATCH)).scalars():
        yield (sku.code, sku.name, sku.spec, sku.unit, categories.get(sku.category_id, ""), sku.pack_size, sku.moq,
               sku.step, sheets.yuan_decimal(sku.list_price_fen), sku.low_stock_qty,
               SKU_STATUS_LABELS.get(sku.status, sku.status), sku.image_url or "")


def export_workbook(*, staff):
    require(staff, "catalog.view", "你的角色无权导出商品")
    require(staff, "catalog.prices", "你的角色无权导出商品")
    return sheets.workbook_file(TITLE, COLUMNS, export_rows(staff=staff), notes=NOTES)


def _parse(cells, categories):
    """Keyword arguments for create_sku/update_sku from one row's cells (Excel types handled here;
    the catalogue's own checks run in the service)."""
    category = sheets.text(cells.get("category"), "分类", max_len=64)
    if category not in categories:
        raise CellError(f"分类“{category}”不存在")
    if categories[category] is None:
        raise CellError(f"有多个名为“{category}”的分类，无法确定是哪一个")
    fields = {
        "name": sheets.text(cells.get("name"), "商品名称", max_len=128),
        "spec": sheets.text(cells.get("spec"), "规格", max_len=64, required=False),
        "unit": sheets.text(cells.get("unit"), "单位", max_len=8),
        "category_id": categories[category],
        "pack_size": sheets.integer(cells.get("pack_size"), "每箱数量", minimum=1),
        "moq": sheets.integer(cells.get("moq"), "起订量", minimum=1),
        "step": sheets.integer(cells.get("step"), "订购倍数", minimum=1),
        "list_price_fen": sheets.money_fen(cells.get("list_price"), "目录价"),
        "low_stock_qty": sheets.integer(cells.get("low_stock_qty"), "低库存阈值", minimum=0),
        "status": sheets.choice(cells.get("status"), "状态", STATUS_BY_LABEL),
    }
    if "image_url" in cells:
        fields["image_url"] = sheets.text(cells.get("image_url"), "图片地址", max_len=512, required=False) or None
    return fields


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate a SKU workbook and, with `apply`, import it in one transaction (a preview runs
    the same and rolls back). Raises `FileRejected` / `RowsRejected` (every bad row) and then
    writes nothing. The catalogue service audits each created or changed SKU."""
    require(staff, "catalog.edit", "你的角色无权导入商品")
    sheet = sheets.read_sheet(data, COLUMNS)
    return run_import(staff=staff, kind=KIND, title=TITLE, filename=filename, sheet=sheet, apply=apply,
                      work=lambda session, errors, result: _run(session, staff, sheet, errors, result))


def _run(session, staff, sheet, errors, result):
    categories = {}
    for category_id, name in session.execute(select(Category.id, Category.name)):
        categories[name] = None if name in categories else category_id
    existing = {code.upper(): sku_id for sku_id, code in session.execute(select(Sku.id, Sku.code))}
    seen = {}
    for number, cells in sheet.rows:
        try:
            code = sheets.text(cells.get("code"), "商品编码", max_len=32)
            fields = _parse(cells, categories)
        except CellError as exc:
            errors.add(number, str(exc))
            continue
        if code.upper() in seen:
            errors.add(number, f"商品编码“{code}”与第 {seen[code.upper()]} 行重复")
            continue
        seen[code.upper()] = number
        sku_id = existing.get(code.upper())
        try:
            if sku_id is None:
                sku = catalog.create_sku(staff=staff, code=code, session=session, **fields)
                result.add(Change(number, "create", f"{sku.code} {sku.name}", after=_describe(fields)))
            else:
                sku = session.get(Sku, sku_id)
                before = {k: getattr(sku, k) for k in fields}
                catalog.update_sku(staff=staff, sku_id=sku_id, session=session, **fields)
                old = {k: v for k, v in before.items() if getattr(sku, k) != v}
                if old:
                    result.add(Change(number, "update", f"{sku.code} {sku.name}", before=_describe(old),
                                      after=_describe({k: getattr(sku, k) for k in old})))
                else:
                    result.unchanged += 1
        except DomainError as exc:
            errors.add(number, exc.message)
    session.flush()


def _describe(values):
    shown = []
    for key, value in values.items():
        if key == "list_price_fen":
            value = sheets.yuan_decimal(value)
        elif key == "status":
            value = SKU_STATUS_LABELS.get(value, value)
        elif key == "category_id":
            value = db.session.execute(select(Category.name).where(Category.id == value)).scalar()
        shown.append(f"{_FIELD_LABELS.get(key, key)}：{value if value not in (None, '') else '—'}")
    return "，".join(shown)

