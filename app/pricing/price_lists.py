"""Staff: price lists and their items (console, Excel import).

Keyword arguments and the acting staff; role checked, input validated (DomainError with the
field in `details`), audited in the same transaction. Pass `session=` to run several calls
as one transaction that the caller commits (an import); otherwise each call commits.

Every change of a list (its name, validity or prices) gives it a new `version`, once per
transaction (`_new_version`): order lines record the version that priced them.
"""
import weakref

from sqlalchemy import bindparam, func, or_, select

from app.audit import service as audit
from app.catalog.models import Sku
from app.database import joined_transaction
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import business_today
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require, sees_only_own_dealers
from app.pricing.models import PriceList, PriceListItem

KIND_LABELS = {"tier": "等级价", "dealer": "经销商专属价"}
MAX_ITEM_ERRORS = 50

# {a session's root transaction: ids of the lists already given their new version in it}:
# an import saves a list and then sets its prices, and that is one change, one version.
_versioned = weakref.WeakKeyDictionary()


def _new_version(session, price_list):
    """Count a change of `price_list` (name, validity or prices): its version goes up by one
    the first time in this transaction, in SQL (`version + 1`), so two editors at once on
    PostgreSQL each count (the row lock orders them) and neither overwrites the other."""
    done = _versioned.setdefault(session.get_transaction(), set())
    if price_list.id not in done:
        done.add(price_list.id)
        price_list.version = PriceList.version + 1


def _created(session, price_list):
    """A list created in this transaction is version 1, whatever else the transaction sets in it."""
    _versioned.setdefault(session.get_transaction(), set()).add(price_list.id)


def _lists_for(staff):
    """Price lists `staff` may see: a sales rep the tier lists and their own dealers' lists."""
    from app.dealers.models import Dealer

    query = select(PriceList)
    if sees_only_own_dealers(staff):
        mine = select(Dealer.id).where(Dealer.rep_id == staff.id)
        query = query.where(or_(PriceList.kind == "tier", PriceList.dealer_id.in_(mine)))
    return query


def validity_status(price_list, today=None):
    """'valid', 'expired' or 'not_yet_valid' on `today` (the business day by default)."""
    today = today or business_today()
    if price_list.valid_from > today:
        return "not_yet_valid"
    if price_list.valid_to is not None and price_list.valid_to < today:
        return "expired"
    return "valid"


def list_price_lists(*, staff, kind=None):
    """Price lists `staff` may see, newest start first, with target names and item counts:
    [(PriceList, tier name, dealer code, dealer name, item count)]."""
    from app.dealers.models import Dealer, Tier

    require(staff, "prices.view", "你的角色无权查看价格")
    if kind is not None:
        inputs.choice(kind, field="kind", label="价目表类型", choices=KIND_LABELS)
    counts = (select(PriceListItem.price_list_id, func.count().label("n"))
              .group_by(PriceListItem.price_list_id).subquery())
    query = (
        _lists_for(staff)
        .add_columns(Tier.name, Dealer.code, Dealer.name, func.coalesce(counts.c.n, 0))
        .outerjoin(Tier, Tier.id == PriceList.tier_id)
        .outerjoin(Dealer, Dealer.id == PriceList.dealer_id)
        .outerjoin(counts, counts.c.price_list_id == PriceList.id)
        .order_by(PriceList.kind.desc(), PriceList.valid_from.desc(), PriceList.id.desc())
    )
    if kind is not None:
        query = query.where(PriceList.kind == kind)
    return db.session.execute(query).all()


def get_price_list(*, staff, price_list_id):
    """A price list `staff` may see; another rep's dealer's list is as missing as an unknown id."""
    require(staff, "prices.view", "你的角色无权查看价格")
    price_list = db.session.execute(_lists_for(staff).where(PriceList.id == price_list_id)).scalar_one_or_none()
    if price_list is None:
        raise NotFound("价目表不存在", "price_list_not_found")
    return price_list


def price_list_items(price_list_id):
    """[(PriceListItem, Sku)] of a list, by SKU code."""
    return db.session.execute(
        select(PriceListItem, Sku).join(Sku, Sku.id == PriceListItem.sku_id)
        .where(PriceListItem.price_list_id == price_list_id).order_by(Sku.code)
    ).all()


def _list_fields(price_list):
    return {"name": price_list.name, "kind": price_list.kind, "tier_id": price_list.tier_id,
            "dealer_id": price_list.dealer_id, "valid_from": price_list.valid_from, "valid_to": price_list.valid_to}


def save_price_list(*, staff, price_list_id=None, name, valid_from, valid_to=None, kind=None, tier_code=None,
                    dealer_code=None, items=None, session=None):
    """Create a price list (`kind` 'tier' with `tier_code`, or 'dealer' with `dealer_code`) or,
    with `price_list_id`, change its name and validity (kind and target stay). `valid_to` None
    means open-ended; both dates inclusive. `items` (optional) are set as by `set_prices`.
    Returns the PriceList."""
    from app.dealers.models import Dealer, Tier

    require(staff, "prices.edit", "你的角色无权修改价格")
    name = inputs.text(name, field="name", label="价目表名称", max_len=64)
    valid_from = inputs.day(valid_from, field="valid_from", label="生效日期")
    valid_to = inputs.day(valid_to, field="valid_to", label="失效日期", required=False)
    if valid_to is not None and valid_to < valid_from:
        raise inputs.invalid("valid_to", "失效日期不能早于生效日期")
    with joined_transaction(session) as s:
        if price_list_id is None:
            kind = inputs.choice(kind, field="kind", label="价目表类型", choices=KIND_LABELS)
            target = {"tier_id": None, "dealer_id": None}
            if kind == "tier":
                code = inputs.text(tier_code, field="tier_code", label="经销商等级", max_len=32)
                target["tier_id"] = s.execute(select(Tier.id).where(Tier.code == code)).scalar()
                if target["tier_id"] is None:
                    raise inputs.invalid("tier_code", f"经销商等级 {code} 不存在")
            else:
                code = inputs.text(dealer_code, field="dealer_code", label="经销商编码", max_len=32)
                target["dealer_id"] = s.execute(select(Dealer.id).where(func.upper(Dealer.code) == code.upper())).scalar()
                if target["dealer_id"] is None:
                    raise inputs.invalid("dealer_code", f"经销商 {code} 不存在")
            price_list = PriceList(name=name, kind=kind, valid_from=valid_from, valid_to=valid_to, **target)
            s.add(price_list)
            s.flush()
            _created(s, price_list)
            audit.record(s, actor=staff, action="price_list.save", entity_type="price_list", entity_id=price_list.id,
                         label=name, after=_list_fields(price_list))
        else:
            price_list = s.get(PriceList, price_list_id)
            if price_list is None:
                raise NotFound("价目表不存在", "price_list_not_found")
            if kind is not None and kind != price_list.kind:
                raise inputs.invalid("kind", "价目表类型不能修改，请新建价目表")
            before = _list_fields(price_list)
            price_list.name, price_list.valid_from, price_list.valid_to = name, valid_from, valid_to
            old, new = audit.changed(before, _list_fields(price_list))
            if new:
                _new_version(s, price_list)
                audit.record(s, actor=staff, action="price_list.save", entity_type="price_list",
                             entity_id=price_list.id, label=name, before=old, after=new)
        if items:
            _set_prices(s, staff, price_list, items)
    _catalogue_changed()
    return price_list


def set_price(*, staff, price_list_id, price_fen, sku_id=None, sku_code=None, session=None):
    """Set one SKU's price (integer fen) in a list, adding the item if missing. Audited
    (`price.set`, before/after). The SKU by id or by code."""
    return set_prices(staff=staff, price_list_id=price_list_id,
                      items=[{"sku_id": sku_id, "sku_code": sku_code, "price_fen": price_fen}], session=session)[0]


def set_prices(*, staff, price_list_id, items, reason=None, session=None):
    """Set many prices in one list in one transaction: `items` are dicts with `sku_id` or
    `sku_code` and `price_fen`. All rows are checked first; if any is bad nothing changes and
    the DomainError lists them in `details["rows"]` as {index (0-based), field, message}.
    `reason` (optional) goes on every `price.set` audit entry (an import names its file).
    Returns [(sku_id, old price or None, new price)]."""
    require(staff, "prices.edit", "你的角色无权修改价格")
    with joined_transaction(session) as s:
        price_list = s.get(PriceList, price_list_id)
        if price_list is None:
            raise NotFound("价目表不存在", "price_list_not_found")
        changes = _set_prices(s, staff, price_list, items, reason)
    _catalogue_changed()
    return changes


def _set_prices(session, staff, price_list, items, reason=None):
    if not isinstance(items, (list, tuple)) or not items:
        raise inputs.invalid("items", "没有要设置的价格")
    errors, wanted = [], []
    ids, codes = set(), set()
    for i, item in enumerate(items):
        try:
            price = inputs.fen(item.get("price_fen"), field="price_fen", label="价格")
            if item.get("sku_id") not in (None, ""):
                ref = ("id", inputs.integer(item["sku_id"], field="sku_id", label="商品", minimum=1, maximum=2**53))
                ids.add(ref[1])
            else:
                code = inputs.text(item.get("sku_code"), field="sku_code", label="商品编码", max_len=32)
                ref = ("code", code.upper())
                codes.add(ref[1])
            wanted.append((i, ref, price))
        except DomainError as exc:
            errors.append({"index": i, "field": exc.details.get("field"), "message": exc.message})
    found = {}
    for chunk in _chunks(sorted(ids)):
        for sku_id, code, name in session.execute(select(Sku.id, Sku.code, Sku.name).where(Sku.id.in_(chunk))):
            found[("id", sku_id)] = (sku_id, code, name)
    for chunk in _chunks(sorted(codes)):
        for sku_id, code, name in session.execute(
            select(Sku.id, Sku.code, Sku.name).where(func.upper(Sku.code).in_(chunk))
        ):
            found[("code", code.upper())] = (sku_id, code, name)
    resolved, seen = [], {}
    for i, ref, price in wanted:
        sku = found.get(ref)
        if sku is None:
            field = "sku_id" if ref[0] == "id" else "sku_code"
            errors.append({"index": i, "field": field, "message": f"商品 {ref[1]} 不存在"})
        elif sku[0] in seen:
            errors.append({"index": i, "field": "sku_code", "message": f"商品 {sku[1]} 重复（与第 {seen[sku[0]] + 1} 条）"})
        else:
            seen[sku[0]] = i
            resolved.append((sku, price))
    if errors:
        errors.sort(key=lambda e: e["index"])
        first = errors[0]
        where = f"第 {first['index'] + 1} 条：" if len(items) > 1 else ""
        raise DomainError("invalid_field", f"{where}{first['message']}", 422,
                          {"field": first["field"], "rows": errors[:MAX_ITEM_ERRORS], "error_count": len(errors)})

    current = {}
    for chunk in _chunks(sorted(seen)):
        current.update(session.execute(
            select(PriceListItem.sku_id, PriceListItem.price_fen)
            .where(PriceListItem.price_list_id == price_list.id, PriceListItem.sku_id.in_(chunk))
        ).all())
    inserts, updates, changes, entries = [], [], [], []
    for (sku_id, code, name), price in resolved:
        old = current.get(sku_id)
        changes.append((sku_id, old, price))
        if old == price:
            continue
        (inserts if old is None else updates).append({"l": price_list.id, "s": sku_id, "p": price})
        entries.append({
            "actor": staff, "action": "price.set", "entity_type": "price_list", "entity_id": price_list.id,
            "label": f"{price_list.name} · {code} {name}",
            "before": {"sku": code, "price_fen": old} if old is not None else None,
            "after": {"sku": code, "price_fen": price}, "reason": reason,
        })
    audit.record_many(session, entries)
    _write_items(session, inserts, updates)
    if inserts or updates:
        _new_version(session, price_list)
    return changes


# PostgreSQL: a whole batch in one statement of constant text each (arrays in): an import of
# 5,000 prices is two statements, not 5,000 pipelined ones.
_INSERT_ITEMS_PG = (
    "INSERT INTO price_list_items (price_list_id, sku_id, price_fen)"
    " SELECT * FROM unnest(CAST(%(l)s AS bigint[]), CAST(%(s)s AS bigint[]), CAST(%(p)s AS bigint[]))"
)
_UPDATE_ITEMS_PG = (
    "UPDATE price_list_items SET price_fen = v.p"
    " FROM unnest(CAST(%(l)s AS bigint[]), CAST(%(s)s AS bigint[]), CAST(%(p)s AS bigint[])) AS v(l, s, p)"
    " WHERE price_list_items.price_list_id = v.l AND price_list_items.sku_id = v.s"
)


def _write_items(session, inserts, updates):
    """Insert and update price list items ({l, s, p} dicts) in bulk."""
    if session.get_bind().dialect.name == "postgresql":
        for rows, sql in ((inserts, _INSERT_ITEMS_PG), (updates, _UPDATE_ITEMS_PG)):
            if rows:
                session.connection().exec_driver_sql(sql, {k: [row[k] for row in rows] for k in ("l", "s", "p")})
        return
    table = PriceListItem.__table__
    if inserts:
        session.execute(table.insert().values(price_list_id=bindparam("l"), sku_id=bindparam("s"), price_fen=bindparam("p")),
                        inserts)
    if updates:
        session.execute(
            table.update().where(table.c.price_list_id == bindparam("l"), table.c.sku_id == bindparam("s"))
            .values(price_fen=bindparam("p")), updates)


def delete_price(*, staff, price_list_id, sku_id, session=None):
    """Remove a SKU from a price list (the dealer then pays the next price that applies)."""
    require(staff, "prices.edit", "你的角色无权修改价格")
    with joined_transaction(session) as s:
        price_list = s.get(PriceList, price_list_id)
        item = s.get(PriceListItem, (price_list_id, sku_id)) if price_list is not None else None
        if item is None:
            raise NotFound("价目表中没有这个商品", "price_not_found")
        sku = s.get(Sku, sku_id)
        audit.record(s, actor=staff, action="price.delete", entity_type="price_list", entity_id=price_list.id,
                     label=f"{price_list.name} · {sku.code} {sku.name}",
                     before={"sku": sku.code, "price_fen": item.price_fen}, after=None)
        s.delete(item)
        _new_version(s, price_list)
    _catalogue_changed()


def _chunks(values, size=500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _catalogue_changed():
    from app.catalog.service import invalidate_catalogue

    invalidate_catalogue()
