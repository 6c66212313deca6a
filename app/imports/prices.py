"""Price lists in Excel: one row per (price list, SKU).

The same layout serves one list and every list: each row names its list (价格表编号 for an
existing list; blank for a new one, grouped by 价格表名称) and repeats the list's type,
target and validity, so any export can be edited and imported again.

An import only adds or changes prices; a SKU left out of the file keeps its price (delete
prices on the price page). Everything is validated before anything is written, and the
writes are a few bulk statements in one transaction: a bad row anywhere changes nothing.
"""
import re
from dataclasses import dataclass

from sqlalchemy import select

from app.audit import service as audit
from app.catalog.models import Sku
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.imports import sheets
from app.imports.result import Change, run_import
from app.imports.sheets import CellError, Column, Errors
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import require
from app.pricing import price_lists as pricing
from app.pricing.models import PriceList, PriceListItem

KIND = "prices"
TITLE = "价格表"
EXPORT_PERMISSIONS = ("prices.view",)
IMPORT_PERMISSIONS = ("prices.edit",)

# The pricing service's names, and the shorter 经销商价 people also write.
KIND_LABELS = {**{label: kind for kind, label in pricing.KIND_LABELS.items()}, "经销商价": "dealer"}
KIND_NAMES = dict(pricing.KIND_LABELS)
NAME_MAX = 64

COLUMNS = (
    Column("list_id", "价格表编号", 10),
    Column("name", "价格表名称", 18),
    Column("kind", "类型", 10),
    Column("target", "适用对象编码", 14),
    Column("target_name", "适用对象名称", 24, reference=True),
    Column("valid_from", "生效日期", 12),
    Column("valid_to", "失效日期", 12),
    Column("sku_code", "商品编码", 16),
    Column("sku_name", "商品名称", 24, reference=True),
    Column("spec", "规格", 14, reference=True),
    Column("list_price", "目录价（元）", 12, reference=True),
    Column("price", "价格（元）", 12),
)

NOTES = (
    "价格表导入说明",
    "· 每行是一个价格表里一个商品的价格。灰色表头的列（名称、规格、目录价）只供参考，导入时忽略。",
    "· 价格表编号：修改已有价格表时照导出的填写；留空表示新建价格表，同名的行属于同一个新价格表。",
    "· 类型：等级价 或 经销商专属价；适用对象编码：等级编码（如 gold）或经销商编码（如 D001）。",
    "· 同一价格表的各行，名称、类型、适用对象、生效日期、失效日期必须一致；失效日期可留空（长期有效）。",
    "· 价格（元）：如 12.5、12.50、¥1,234.00；最多两位小数（精确到分），不四舍五入；不能为负数。",
    "· 文件里没有的商品，原价格不变；要删除某个价格请在价格页面操作。",
    "· 任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
)


# --- export ---------------------------------------------------------------------------

def _visible_lists(staff, list_id=None):
    """The lists `staff` may read (the pricing service's rule: a rep sees tier lists and their
    own dealers' lists); one list by id, or NotFound."""
    if list_id is not None:
        return [pricing.get_price_list(staff=staff, price_list_id=list_id)]
    return sorted((row[0] for row in pricing.list_price_lists(staff=staff)), key=lambda pl: pl.id)


def export_rows(*, staff, list_id=None):
    """Rows for `COLUMNS`: every item of the lists `staff` may see (one list with `list_id`, or
    NotFound before the first row), read from the database in batches."""
    lists = _visible_lists(staff, list_id)
    return _rows(lists)


def _rows(lists):
    tiers = {t.id: t for t in db.session.execute(select(Tier)).scalars()}
    dealer_ids = {pl.dealer_id for pl in lists if pl.dealer_id}
    dealers = {}
    if dealer_ids:
        dealers = {d.id: d for d in db.session.execute(select(Dealer).where(Dealer.id.in_(dealer_ids))).scalars()}
    by_id = {pl.id: pl for pl in lists}
    items = db.session.execute(
        select(PriceListItem.price_list_id, PriceListItem.price_fen, Sku.code, Sku.name, Sku.spec, Sku.list_price_fen)
        .join(Sku, Sku.id == PriceListItem.sku_id)
        .where(PriceListItem.price_list_id.in_(list(by_id) or [0]))
        .order_by(PriceListItem.price_list_id, Sku.code)
        .execution_options(yield_per=sheets.EXPORT_BATCH)
    )
    for list_id_, price_fen, code, name, spec, list_price_fen in items:
        pl = by_id[list_id_]
        target = tiers[pl.tier_id] if pl.kind == "tier" else dealers[pl.dealer_id]
        yield (
            pl.id, pl.name, KIND_NAMES[pl.kind], target.code, target.name, pl.valid_from, pl.valid_to,
            code, name, spec, sheets.yuan_decimal(list_price_fen), sheets.yuan_decimal(price_fen),
        )


def export_workbook(*, staff, list_id=None):
    return sheets.workbook_file(TITLE, COLUMNS, export_rows(staff=staff, list_id=list_id), notes=NOTES)


# --- import ---------------------------------------------------------------------------

@dataclass
class _Row:
    number: int
    list_id: int | None
    name: str
    kind: str
    target: str
    valid_from: object
    valid_to: object
    sku_code: str
    price_fen: int


_CELLS = (
    ("list_id", lambda v: sheets.integer(v, "价格表编号", minimum=1, required=False)),
    ("name", lambda v: sheets.text(v, "价格表名称", max_len=NAME_MAX)),
    ("kind", lambda v: sheets.choice(v, "类型", KIND_LABELS)),
    ("target", lambda v: sheets.text(v, "适用对象编码", max_len=32)),
    ("valid_from", lambda v: sheets.day(v, "生效日期")),
    ("valid_to", lambda v: sheets.day(v, "失效日期", required=False)),
    ("sku_code", lambda v: sheets.text(v, "商品编码", max_len=32)),
    ("price_fen", lambda v: sheets.money_fen(v, "价格")),
)
_SOURCE = {"price_fen": "price"}


def parse_rows(sheet, errors):
    """Typed rows; every cell problem goes to `errors` (a bad row is left out)."""
    parsed = []
    for number, cells in sheet.rows:
        values, bad = {}, False
        for key, parse in _CELLS:
            try:
                values[key] = parse(cells.get(_SOURCE.get(key, key)))
            except CellError as exc:
                errors.add(number, str(exc))
                bad = True
        if not bad:
            parsed.append(_Row(number=number, **values))
    return parsed


_HEADER_FIELDS = (("name", "价格表名称"), ("kind", "类型"), ("target", "适用对象编码"),
                  ("valid_from", "生效日期"), ("valid_to", "失效日期"))


def _groups(rows, errors):
    """Rows by price list (an id, or a new list's name), checking that every row of a list
    names the same list header; {key: [rows]} of the rows that agree with their list's first."""
    groups, first = {}, {}
    for row in rows:
        key = ("id", row.list_id) if row.list_id is not None else ("new", row.name)
        head = first.setdefault(key, row)
        for attr, label in _HEADER_FIELDS:
            if getattr(row, attr) != getattr(head, attr):
                errors.add(row.number, f"同一价格表的{label}与第 {head.number} 行不一致")
                break
        else:
            groups.setdefault(key, []).append(row)
    return groups


def _target_code(session, price_list):
    if price_list.kind == "tier":
        return session.get(Tier, price_list.tier_id).code
    return session.get(Dealer, price_list.dealer_id).code


def lists_for(staff):
    """The price lists `staff` may export, for the page's "one list" choice."""
    return _visible_lists(staff)


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate an uploaded price-list workbook and, with `apply`, import it in one transaction.

    Cells are read here (Excel's numbers, dates and "¥1,234.00" text); every list then goes
    through the pricing service — `save_price_list` for the list, `set_prices` for its items —
    so the rules and audit entries (`price_list.save`, `price.set` with before/after fen) are
    the price page's own. A preview runs the same and rolls back. Returns an `ImportResult`;
    raises `FileRejected` for a file-level problem and `RowsRejected` listing every bad row (row
    number and reason); in both cases nothing is written. The file gets one `import` entry.
    """
    require(staff, "prices.edit", "你的角色无权导入价格表")
    sheet = sheets.read_sheet(data, COLUMNS)
    errors = Errors()
    rows = parse_rows(sheet, errors)
    return run_import(staff=staff, kind=KIND, title=TITLE, filename=filename, sheet=sheet, apply=apply,
                      errors=errors, work=lambda session, errors, result: _run(session, staff, rows, errors, result))


def _run(session, staff, rows, errors, result):
    """Every list through the pricing service inside the caller's transaction; the service's
    errors become row errors. Checks of its own only where the file is the question: rows of
    one list agreeing, a list id that exists, a new list's name not already taken (so the same
    file imported twice cannot make two lists), an existing list's type and target unchanged."""
    groups = _groups(rows, errors)
    new_names = [name for kind, name in groups if kind == "new"]
    taken = dict(session.execute(select(PriceList.name, PriceList.id).where(PriceList.name.in_(new_names or [""]))).all())
    for (kind, ref), group in groups.items():
        head = group[0]
        existing = session.get(PriceList, ref) if kind == "id" else None
        if kind == "id" and existing is None:
            errors.add(head.number, f"价格表编号 {ref} 不存在（新建价格表请把编号留空）")
            continue
        if kind == "new" and ref in taken:
            errors.add(head.number, f"已有名为“{ref}”的价格表（编号 {taken[ref]}）；要修改它请填写价格表编号，要新建请换一个名称")
            continue
        if existing is not None and (existing.kind != head.kind
                                     or _target_code(session, existing).upper() != head.target.upper()):
            errors.add(head.number, "已有价格表的类型和适用对象不能修改（照导出的填写）；要换对象请新建价格表")
            continue
        before = None if existing is None else _list_snapshot(existing)
        target = {"tier_code": head.target} if head.kind == "tier" else {"dealer_code": head.target}
        try:
            price_list = pricing.save_price_list(
                staff=staff, price_list_id=ref if kind == "id" else None, name=head.name, kind=head.kind,
                valid_from=head.valid_from, valid_to=head.valid_to, session=session, **target)
        except DomainError as exc:
            errors.add(head.number, exc.message)
            continue
        if existing is None:
            result.add(Change(head.number, "create", f"新价格表 {head.name}",
                              after=f"{KIND_NAMES[head.kind]} · {head.target}"))
        else:
            old, new = audit.changed(before, _list_snapshot(price_list))
            if new:
                result.add(Change(head.number, "update", f"价格表 {price_list.id}", before=_describe(old),
                                  after=_describe(new)))
        items = [{"sku_code": row.sku_code, "price_fen": row.price_fen} for row in group]
        try:
            changes = pricing.set_prices(staff=staff, price_list_id=price_list.id, items=items,
                                         reason=f"Excel 导入：{result.filename}"[:200], session=session)
        except DomainError as exc:
            problems = exc.details.get("rows") or ()
            for problem in problems:
                errors.add(group[problem["index"]].number, _row_numbers(problem["message"], group))
            hidden = exc.details.get("error_count", len(problems)) - len(problems)
            if hidden > 0:
                errors.add(head.number, f"这张价格表另有 {hidden} 处商品错误未逐条列出，请先改正已列出的错误")
            if not problems:
                errors.add(head.number, exc.message)
            continue
        for row, (_sku_id, old, new) in zip(group, changes):
            if old == new:
                result.unchanged += 1
            else:
                result.add(Change(row.number, "create" if old is None else "update", f"{head.name} · {row.sku_code}",
                                  before="" if old is None else format_yuan(old), after=format_yuan(new)))


def _row_numbers(message, group):
    """The service counts items from 1 ("与第 3 条"); a clerk reads Excel row numbers."""
    def row_of(match):
        index = int(match.group(1))
        return f"第 {group[index - 1].number} 行" if 0 < index <= len(group) else match.group(0)

    return re.sub(r"第 (\d+) 条", row_of, message)


def _list_snapshot(pl):
    return {"name": pl.name, "kind": pl.kind, "tier_id": pl.tier_id, "dealer_id": pl.dealer_id,
            "valid_from": pl.valid_from, "valid_to": pl.valid_to}


_FIELD_LABELS = {"name": "名称", "kind": "类型", "tier_id": "等级", "dealer_id": "经销商",
                 "valid_from": "生效日期", "valid_to": "失效日期"}


def _describe(values):
    shown = []
    for key, value in values.items():
        if key == "kind":
            value = KIND_NAMES.get(value, value)
        shown.append(f"{_FIELD_LABELS.get(key, key)}：{value if value is not None else '—'}")
    return "，".join(shown)
