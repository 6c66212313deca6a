"""Price lists in Excel: one row per (price list, SKU).

The same layout serves one list and every list: each row names its list (价格表编号 for an
existing list; blank for a new one, grouped by 价格表名称) and repeats the list's type,
target and validity, so any export can be edited and imported again.

An import only adds or changes prices; a SKU left out of the file keeps its price (delete
prices on the price page). Everything is validated before anything is written, and the
writes are a few bulk statements in one transaction: a bad row anywhere changes nothing.
"""
from dataclasses import dataclass

from sqlalchemy import select

from app.audit import service as audit
from app.catalog.models import Sku
from app.database import dialect_insert, write_transaction
from app.dealers.models import Dealer, Tier
from app.dealers.service import scope_to_staff
from app.extensions import db
from app.imports import sheets
from app.imports.result import Change, ImportResult, record_summary
from app.imports.sheets import CellError, Column, Errors, RowsRejected
from app.money import format_yuan
from app.pricing.models import PriceList, PriceListItem

KIND = "prices"
TITLE = "价格表"
EXPORT_ROLES = ("admin", "sales", "finance")
IMPORT_ROLES = ("admin", "finance")

KIND_LABELS = {"等级价": "tier", "经销商价": "dealer"}
KIND_NAMES = {v: k for k, v in KIND_LABELS.items()}
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
    "· 类型：等级价 或 经销商价；适用对象编码：等级编码（如 gold）或经销商编码（如 D001）。",
    "· 同一价格表的各行，名称、类型、适用对象、生效日期、失效日期必须一致；失效日期可留空（长期有效）。",
    "· 价格（元）：如 12.5、12.50、¥1,234.00；最多两位小数（精确到分），不四舍五入；不能为负数。",
    "· 文件里没有的商品，原价格不变；要删除某个价格请在价格页面操作。",
    "· 任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
)


# --- export ---------------------------------------------------------------------------

def _visible_lists(staff, list_id=None):
    query = select(PriceList).order_by(PriceList.id)
    if list_id is not None:
        query = query.where(PriceList.id == list_id)
    if staff.role == "sales":
        # A rep sees tier lists and the lists of their own dealers only.
        own = scope_to_staff(select(Dealer.id), staff)
        query = query.where((PriceList.kind == "tier") | PriceList.dealer_id.in_(own))
    return db.session.execute(query).scalars().all()


def export_rows(*, staff, list_id=None):
    """Rows for `COLUMNS`: every item of the lists `staff` may see (one list with `list_id`)."""
    lists = _visible_lists(staff, list_id)
    if list_id is not None and not lists:
        from app.errors import NotFound

        raise NotFound("价格表不存在")
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
    )
    for list_id_, price_fen, code, name, spec, list_price_fen in items:
        pl = by_id[list_id_]
        target = tiers[pl.tier_id] if pl.kind == "tier" else dealers[pl.dealer_id]
        yield (
            pl.id, pl.name, KIND_NAMES[pl.kind], target.code, target.name, pl.valid_from, pl.valid_to,
            code, name, spec, sheets.yuan_decimal(list_price_fen), sheets.yuan_decimal(price_fen),
        )


def export_workbook(*, staff, list_id=None):
    rows = list(export_rows(staff=staff, list_id=list_id))  # a missing list answers 404 before writing starts
    return sheets.workbook_bytes(TITLE, COLUMNS, rows, notes=NOTES)


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
        if bad:
            continue
        if values["valid_to"] is not None and values["valid_to"] < values["valid_from"]:
            errors.add(number, "失效日期不能早于生效日期")
            continue
        parsed.append(_Row(number=number, **values))
    return parsed


_HEADER_FIELDS = (("name", "价格表名称"), ("kind", "类型"), ("target", "适用对象编码"),
                  ("valid_from", "生效日期"), ("valid_to", "失效日期"))


@dataclass
class _ListPlan:
    first: _Row
    existing: PriceList | None
    tier_id: int | None = None
    dealer_id: int | None = None
    target_name: str = ""


def _chunks(values, size=900):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _ids_by_code(session, column_id, column_code, codes):
    found = {}
    for chunk in _chunks(sorted(codes)):
        found.update({code: id_ for id_, code in session.execute(select(column_id, column_code).where(column_code.in_(chunk)))})
    return found


def _plan(session, rows, errors, *, lock):
    """Check the rows against the database: lists, targets, SKUs, duplicates.

    Returns ({list key: _ListPlan}, {list key: {sku_id: row}}, sku codes by id).
    With `lock`, the existing lists named in the file are locked (FOR UPDATE) first.
    """
    list_ids = sorted({r.list_id for r in rows if r.list_id is not None})
    query = select(PriceList).where(PriceList.id.in_(list_ids or [0])).order_by(PriceList.id)
    if lock:
        query = query.with_for_update()
    existing = {pl.id: pl for pl in session.execute(query).scalars()}
    tiers = {t.code: t for t in session.execute(select(Tier)).scalars()}
    dealer_codes = {r.target for r in rows if r.kind == "dealer"}
    dealers = {}
    for chunk in _chunks(sorted(dealer_codes)):
        dealers.update({d.code: d for d in session.execute(select(Dealer).where(Dealer.code.in_(chunk))).scalars()})
    skus = _ids_by_code(session, Sku.id, Sku.code, {r.sku_code for r in rows})
    new_names = {r.name for r in rows if r.list_id is None}
    taken_names = dict(session.execute(
        select(PriceList.name, PriceList.id).where(PriceList.name.in_(new_names or [""]))
    ).all())

    lists, items = {}, {}
    for row in rows:
        key = ("id", row.list_id) if row.list_id is not None else ("new", row.name)
        plan = lists.get(key)
        if plan is None:
            plan = _ListPlan(first=row, existing=existing.get(row.list_id))
            problem = None
            if row.list_id is not None and plan.existing is None:
                problem = f"价格表编号 {row.list_id} 不存在（新建价格表请把编号留空）"
            elif row.list_id is None and row.name in taken_names:
                problem = (f"已有名为“{row.name}”的价格表（编号 {taken_names[row.name]}）；"
                           "要修改它请填写价格表编号，要新建请换一个名称")
            elif row.kind == "tier":
                tier = tiers.get(row.target)
                if tier is None:
                    problem = f"等级编码“{row.target}”不存在，可用：" + "、".join(sorted(tiers))
                else:
                    plan.tier_id, plan.target_name = tier.id, tier.name
            else:
                dealer = dealers.get(row.target)
                if dealer is None:
                    problem = f"经销商编码“{row.target}”不存在"
                else:
                    plan.dealer_id, plan.target_name = dealer.id, dealer.name
            if problem:
                errors.add(row.number, problem)
                plan.first = None  # every later row of this list is reported against the first
            lists[key] = plan
            items[key] = {}
        elif plan.first is None:
            continue
        else:
            for attr, label in _HEADER_FIELDS:
                if getattr(row, attr) != getattr(plan.first, attr):
                    errors.add(row.number, f"同一价格表的{label}与第 {plan.first.number} 行不一致")
                    break
        if plan.first is None:
            continue
        sku_id = skus.get(row.sku_code)
        if sku_id is None:
            errors.add(row.number, f"商品编码“{row.sku_code}”不存在")
            continue
        earlier = items[key].get(sku_id)
        if earlier is not None:
            errors.add(row.number, f"商品“{row.sku_code}”在同一价格表里与第 {earlier.number} 行重复")
            continue
        items[key][sku_id] = row
    return lists, items, {id_: code for code, id_ in skus.items()}


def _header_values(plan):
    row = plan.first
    return {"name": row.name, "kind": row.kind, "tier_id": plan.tier_id, "dealer_id": plan.dealer_id,
            "valid_from": row.valid_from, "valid_to": row.valid_to}


def _list_snapshot(pl):
    return {"name": pl.name, "kind": pl.kind, "tier_id": pl.tier_id, "dealer_id": pl.dealer_id,
            "valid_from": pl.valid_from, "valid_to": pl.valid_to}


def _current_prices(session, list_ids):
    current = {}
    for chunk in _chunks(list_ids):
        for list_id, sku_id, price_fen in session.execute(
            select(PriceListItem.price_list_id, PriceListItem.sku_id, PriceListItem.price_fen)
            .where(PriceListItem.price_list_id.in_(chunk))
        ):
            current[(list_id, sku_id)] = price_fen
    return current


ITEMS = PriceListItem.__table__


def lists_for(staff):
    """The price lists `staff` may export, for the page's "one list" choice."""
    return _visible_lists(staff)


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate an uploaded price-list workbook and, with `apply`, import it in one transaction.

    Returns an `ImportResult` (counts and every change, before → after). Raises
    `FileRejected` for a file-level problem and `RowsRejected` listing every bad row (row
    number and reason); in both cases nothing is written. Each new or changed price gets a
    `price.set` audit entry (before/after in fen), a new or edited list a `price_list.save`
    entry, and the file one `import` entry with the counts.
    """
    sheet = sheets.read_sheet(data, COLUMNS)
    errors = Errors()
    rows = parse_rows(sheet, errors)
    result = ImportResult(kind=KIND, filename=filename, rows=len(sheet.rows), ignored_headers=sheet.ignored_headers)
    if not apply:
        try:
            _run(db.session, staff, rows, errors, result, write=False)
        finally:
            db.session.rollback()
        return result
    with write_transaction() as session:
        _run(session, staff, rows, errors, result, write=True)
        result.applied = True
    return result


def _run(session, staff, rows, errors, result, *, write):
    lists, items, sku_codes = _plan(session, rows, errors, lock=write)
    if errors:
        raise RowsRejected(errors.items, result.rows)
    current = _current_prices(session, sorted(p.existing.id for p in lists.values() if p.existing))
    reason = f"Excel 导入：{result.filename}"[:200]
    upserts, entries = [], []
    for key, plan in lists.items():
        values = _header_values(plan)
        pl = plan.existing
        list_label = plan.first.name
        if pl is None:
            result.add(Change(plan.first.number, "create", f"新价格表 {list_label}",
                              after=f"{KIND_NAMES[plan.first.kind]} · {plan.target_name}"))
            if write:
                pl = PriceList(**values)
                session.add(pl)
                session.flush()
                audit.record(session, actor=staff, action="price_list.save", entity_type="price_list",
                             entity_id=pl.id, label=pl.name, after=_list_snapshot(pl), reason=reason)
        else:
            before, after = audit.changed(_list_snapshot(pl), values)
            if before:
                result.add(Change(plan.first.number, "update", f"价格表 {pl.id} {pl.name}",
                                  before=_describe(before), after=_describe(after)))
                if write:
                    for attr, value in values.items():
                        setattr(pl, attr, value)
                    audit.record(session, actor=staff, action="price_list.save", entity_type="price_list",
                                 entity_id=pl.id, label=values["name"], before=before, after=after, reason=reason)
        for sku_id, row in items[key].items():
            old = current.get((pl.id, sku_id)) if pl is not None and pl.id is not None else None
            if old == row.price_fen:
                result.unchanged += 1
                continue
            code = sku_codes[sku_id]
            result.add(Change(row.number, "create" if old is None else "update", f"{list_label} · {code}",
                              before="" if old is None else format_yuan(old), after=format_yuan(row.price_fen)))
            if write:
                upserts.append((pl.id, sku_id, row.price_fen))
                entries.append({
                    "action": "price.set", "entity_type": "price_list", "entity_id": pl.id,
                    "label": f"{list_label} · {code}", "before": None if old is None else {"sku": code, "price_fen": old},
                    "after": {"sku": code, "price_fen": row.price_fen}, "reason": reason,
                })
    if write:
        session.flush()
        _upsert_items(session, upserts)
        audit.record_many(session, [{"actor": staff, **entry} for entry in entries])
        record_summary(session, staff=staff, result=result, label=TITLE, reason=None)


# PostgreSQL: every price in one statement of constant text (arrays in).
_UPSERT_PG = (
    "INSERT INTO price_list_items (price_list_id, sku_id, price_fen)"
    " SELECT * FROM unnest(CAST(%(l)s AS bigint[]), CAST(%(s)s AS bigint[]), CAST(%(p)s AS bigint[]))"
    " ON CONFLICT (price_list_id, sku_id) DO UPDATE SET price_fen = EXCLUDED.price_fen"
)


def _upsert_items(session, upserts):
    """Insert or overwrite (price_list_id, sku_id, price_fen) rows in bulk."""
    if not upserts:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        lists, skus, fens = (list(column) for column in zip(*upserts))
        connection.exec_driver_sql(_UPSERT_PG, {"l": lists, "s": skus, "p": fens})
        return
    statement = dialect_insert(session, ITEMS)
    statement = statement.on_conflict_do_update(
        index_elements=[ITEMS.c.price_list_id, ITEMS.c.sku_id], set_={"price_fen": statement.excluded.price_fen},
    )
    connection.execute(statement, [{"price_list_id": l_, "sku_id": s_, "price_fen": p_} for l_, s_, p_ in upserts])


_FIELD_LABELS = {"name": "名称", "kind": "类型", "tier_id": "等级", "dealer_id": "经销商",
                 "valid_from": "生效日期", "valid_to": "失效日期"}


def _describe(values):
    shown = []
    for key, value in values.items():
        if key == "kind":
            value = KIND_NAMES.get(value, value)
        shown.append(f"{_FIELD_LABELS.get(key, key)}：{value if value is not None else '—'}")
    return "，".join(shown)

