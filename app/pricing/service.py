"""The one place prices are computed.

For a dealer and SKU the unit price is the first that applies of: the dealer's own price
list, the dealer's tier price list, the SKU's list price. Only lists valid today count
(`valid_from <= today <= valid_to`, open-ended when `valid_to` is NULL); among several
valid lists of one kind the most recently started wins. Visibility rules decide whether
a SKU exists for the dealer at all (see `VisibilityRule`).
"""
import functools
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Date,
    and_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
)

from app.audit import service as audit
from app.catalog.models import Sku, VisibilityRule
from app.database import joined_transaction
from app.extensions import db
from app.inventory.models import Stock
from app.kernel import inputs
from app.kernel.clock import business_today
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import line_amount
from app.kernel.permissions import require, sees_only_own_dealers
from app.pricing.models import PriceList, PriceListItem


@dataclass(frozen=True)
class Buyer:
    """Who prices are resolved for: the facts of a dealer that rules match on."""

    dealer_id: int
    dealer_code: str
    tier_id: int
    tier_code: str
    region_code: str

    @classmethod
    def of(cls, dealer):
        return cls(dealer.id, dealer.code, dealer.tier_id, dealer.tier.code, dealer.region_code)

    @property
    def region_targets(self):
        """A region rule on a province or city covers everything under it."""
        code = self.region_code
        return sorted({code, code[:4] + "00", code[:2] + "0000"})


    def params(self, today=None):
        """Bind parameters for the statements built by this module."""
        return {
            "dealer_id": self.dealer_id,
            "dealer_code": self.dealer_code,
            "tier_id": self.tier_id,
            "tier_code": self.tier_code,
            "regions": self.region_targets,
            "today": today or business_today(),
        }


# The SQL below is built once with bind parameters (see `Buyer.params`), so a request
# pays only for executing an already-compiled statement, not for building it.

def _rule_matches():
    rule = VisibilityRule
    return or_(
        and_(rule.scope == "tier", rule.target == bindparam("tier_code")),
        and_(rule.scope == "dealer", rule.target == bindparam("dealer_code")),
        and_(rule.scope == "region", rule.target.in_(bindparam("regions", expanding=True))),
    )


def visible_condition():
    """SQL condition on `Sku`: active and visible to the buyer in the bind parameters."""
    rule = VisibilityRule
    denied = exists().where(rule.sku_id == Sku.id, rule.effect == "deny", _rule_matches())
    has_allow = exists().where(rule.sku_id == Sku.id, rule.effect == "allow")
    allowed = exists().where(rule.sku_id == Sku.id, rule.effect == "allow", _rule_matches())
    return and_(Sku.status == "active", ~denied, or_(~has_allow, allowed))


# Which lists a buyer's prices come from, which of them count today and which wins: shared
# by the price columns below (what dealers pay) and `explain_price` (the console's "why").
PRICE_SOURCES = ("dealer", "tier", "list")  # first that has a price wins (`resolve_price`)


def _list_target(kind):
    return PriceList.dealer_id == bindparam("dealer_id") if kind == "dealer" else PriceList.tier_id == bindparam("tier_id")


def _list_valid_today():
    today = bindparam("today", type_=Date)
    return and_(PriceList.valid_from <= today, or_(PriceList.valid_to.is_(None), PriceList.valid_to >= today))


def _list_precedence():
    """Among valid lists of one kind that price a SKU, the most recently started wins."""
    return PriceList.valid_from.desc(), PriceList.id.desc()


def _list_price(kind):
    return (
        select(PriceListItem.price_fen)
        .join(PriceList, PriceList.id == PriceListItem.price_list_id)
        .where(PriceListItem.sku_id == Sku.id, PriceList.kind == kind, _list_target(kind), _list_valid_today())
        .order_by(*_list_precedence())
        .limit(1)
        .scalar_subquery()
    )


def price_columns():
    """The dealer-list and tier-list price of `Sku` (NULL where none applies)."""
    return _list_price("dealer").label("dealer_price_fen"), _list_price("tier").label("tier_price_fen")


def resolve_price(row):
    """(unit price, source) from a row carrying the columns of `price_columns`."""
    if row.dealer_price_fen is not None:
        return row.dealer_price_fen, "dealer"
    if row.tier_price_fen is not None:
        return row.tier_price_fen, "tier"
    return row.list_price_fen, "list"


def available_column():
    """Units available across warehouses: SUM(on_hand - reserved)."""
    # PostgreSQL sums BIGINTs as NUMERIC (a Decimal in Python); keep it an integer.
    total = cast(func.coalesce(func.sum(Stock.on_hand - Stock.reserved), 0), BigInteger)
    return select(total).where(Stock.sku_id == Sku.id).scalar_subquery().label("available")


SKU_COLUMNS = (
    Sku.id, Sku.code, Sku.name, Sku.spec, Sku.unit, Sku.pack_size, Sku.moq, Sku.step,
    Sku.list_price_fen, Sku.category_id, Sku.low_stock_qty, Sku.image_key, Sku.image_url,
)


@functools.cache
def _priced_skus_statement():
    return select(*SKU_COLUMNS, *price_columns(), available_column()).where(
        Sku.id.in_(bindparam("sku_ids", expanding=True)), visible_condition()
    )


def stock_level(available, sku_low_qty):
    if available <= 0:
        return "out"
    if available < sku_low_qty:
        return "low"
    return "in_stock"


def priced_columns():
    """What `priced_skus` reads of each SKU (plus `available`): its fields, the list
    prices and whether the buyer in the bind parameters may see it (`visible`)."""
    return (*SKU_COLUMNS, *price_columns(), visible_condition().label("visible"))


def priced_skus(session, buyer, sku_ids, today=None):
    """{sku_id: row} for the requested ids that are visible to the buyer.

    Each row has the SKU's fields, the list prices (see `resolve_price`) and `available`.
    Ids that are unknown, inactive or hidden are simply absent.
    """
    if not sku_ids:
        return {}
    params = {**buyer.params(today), "sku_ids": sorted(set(sku_ids))}
    rows = session.connection().execute(_priced_skus_statement(), params)
    return {row.id: row for row in rows}


@dataclass
class PricedLine:
    sku_id: int
    qty: int
    sku_code: str = ""
    name: str = ""
    spec: str = ""
    unit: str = ""
    list_price_fen: int = 0
    unit_price_fen: int = 0
    amount_fen: int = 0
    price_source: str = ""
    available: int = 0


@dataclass
class Quote:
    """What an order of these lines would cost and what stands in its way."""

    lines: list
    problems: list
    subtotal_fen: int = 0
    discount_fen: int = 0
    shipping_fen: int = 0

    @property
    def total_fen(self):
        return self.subtotal_fen - self.discount_fen + self.shipping_fen

    def totals(self):
        return {
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "shipping_fen": self.shipping_fen,
            "total_fen": self.total_fen,
        }


def merge_lines(lines):
    """Order lines as (sku_id, qty) pairs with repeated SKUs added up, in first-seen order."""
    merged = {}
    for line in lines:
        merged[line["sku_id"]] = merged.get(line["sku_id"], 0) + line["qty"]
    return list(merged.items())


def quote_lines(session, buyer, lines, *, check_stock=True, today=None):
    """Price `lines` ([{sku_id, qty}]) from the server's own prices and list every problem.

    Problems (each `{code, message, sku_id, ...}`): `sku_unavailable` (unknown, inactive
    or not visible to this dealer — the same answer for all three), `below_moq`,
    `not_step_multiple`, `insufficient_stock` (when `check_stock`).
    """
    pairs = merge_lines(lines)
    rows = priced_skus(session, buyer, [sku_id for sku_id, _ in pairs], today)
    return quote_rows(pairs, rows, check_stock=check_stock)


def quote_rows(pairs, rows, *, check_stock=True):
    """`quote_lines` for merged (sku_id, qty) `pairs` and rows already read: {sku_id: row}
    of the visible SKUs, each with the columns of `priced_skus` (a write that reads them
    in a statement of its own, together with its stock locks, prices through here too)."""
    quote = Quote(lines=[], problems=[])
    for sku_id, qty in pairs:
        row = rows.get(sku_id)
        if row is None:
            quote.problems.append(
                {"code": "sku_unavailable", "sku_id": sku_id, "message": f"商品 {sku_id} 不存在或不可订购"}
            )
            continue
        price_fen, source = resolve_price(row)
        line = PricedLine(
            sku_id=sku_id, qty=qty, sku_code=row.code, name=row.name, spec=row.spec, unit=row.unit,
            list_price_fen=row.list_price_fen, unit_price_fen=price_fen,
            amount_fen=line_amount(price_fen, qty), price_source=source,
            available=row.available,
        )
        quote.lines.append(line)
        quote.subtotal_fen += line.amount_fen
        quote.problems.extend(quantity_problems(row, qty))
        if check_stock and qty > row.available:
            quote.problems.append(
                shortage(sku_id=row.id, name=row.name, unit=row.unit, qty=qty, available=row.available)
            )
    return quote


def quantity_problems(row, qty):
    problems = []
    if qty < row.moq:
        problems.append({
            "code": "below_moq", "sku_id": row.id, "qty": qty, "moq": row.moq,
            "message": f"{row.name} 起订量为 {row.moq}{row.unit}，当前 {qty}{row.unit}",
        })
    if qty % row.step:
        problems.append({
            "code": "not_step_multiple", "sku_id": row.id, "qty": qty, "step": row.step,
            "message": f"{row.name} 须按 {row.step}{row.unit} 的整数倍订购",
        })
    return problems


def shortage(*, sku_id, name, unit, qty, available):
    available = max(available, 0)
    return {
        "code": "insufficient_stock", "sku_id": sku_id, "qty": qty, "available": available,
        "message": f"{name} 库存不足：需要 {qty}{unit}，可用 {available}{unit}",
    }



# --- "what does dealer X pay for SKU Y today, and why" (the console) -----------------------

LIST_STATUS_LABELS = {
    "applied": "采用",
    "outranked": "有效，但经销商专属价优先",
    "superseded": "有效，但被更晚生效的同类价目表取代",
    "no_item": "有效，但没有这个商品的价格",
    "expired": "已过期",
    "not_yet_valid": "尚未生效",
}
SOURCE_LABELS = {"dealer": "经销商专属价", "tier": "等级价", "list": "目录价"}


def describe_rule(scope, target, effect):
    from app.catalog.models import VISIBILITY_EFFECT_LABELS, VISIBILITY_SCOPE_LABELS

    return f"{VISIBILITY_EFFECT_LABELS.get(effect, effect)}{VISIBILITY_SCOPE_LABELS.get(scope, scope)} {target}"


@dataclass
class ConsideredList:
    id: int
    name: str
    kind: str
    valid_from: object
    valid_to: object
    price_fen: int | None  # the list's price for the SKU, None if it has none
    status: str

    @property
    def status_label(self):
        return LIST_STATUS_LABELS[self.status]


@dataclass
class PriceExplanation:
    """The price a buyer pays for a SKU on `today` and why: the same columns and the same
    `resolve_price` as the mini-program, plus every list that could have applied."""

    today: object
    sku: object  # the priced row: SKU fields, dealer/tier list prices, `visible`
    price_fen: int
    source: str
    lists: list
    visible: bool
    visibility_note: str
    rules: list  # [(rule text, effect, matches this buyer)]

    @property
    def source_label(self):
        return SOURCE_LABELS[self.source]


@functools.cache
def _explain_sku_statement():
    return select(*priced_columns(), Sku.status).where(Sku.id == bindparam("sku_id"))


@functools.cache
def _explain_lists_statement():
    item_price = (
        select(PriceListItem.price_fen)
        .where(PriceListItem.price_list_id == PriceList.id, PriceListItem.sku_id == bindparam("sku_id"))
        .scalar_subquery()
    )
    return (
        select(PriceList.id, PriceList.name, PriceList.kind, PriceList.valid_from, PriceList.valid_to,
               item_price.label("price_fen"), _list_valid_today().label("valid"))
        .where(or_(and_(PriceList.kind == "dealer", _list_target("dealer")),
                   and_(PriceList.kind == "tier", _list_target("tier"))))
        .order_by(*_list_precedence())
    )


@functools.cache
def _explain_rules_statement():
    rule = VisibilityRule
    return (
        select(rule.scope, rule.target, rule.effect, _rule_matches().label("matches"))
        .where(rule.sku_id == bindparam("sku_id"))
        .order_by(rule.id)
    )


def explain_price(session, buyer, sku_id, today=None):
    """Why `buyer` pays what it pays for SKU `sku_id` on `today` (default: the business day).

    The price and visibility come from the very statements the catalogue and checkout use
    (`priced_columns`, `resolve_price`); the list-by-list account is read with the same
    validity condition and precedence, so it names the list the price came from. Returns
    None for an unknown SKU.
    """
    params = {**buyer.params(today), "sku_id": sku_id}
    conn = session.connection()
    row = conn.execute(_explain_sku_statement(), params).first()
    if row is None:
        return None
    price_fen, source = resolve_price(row)
    lists, winners = [], {}
    rows = conn.execute(_explain_lists_statement(), params).all()
    for r in sorted(rows, key=lambda r: PRICE_SOURCES.index(r.kind)):  # stable: keeps the precedence order
        if not r.valid:
            status = "expired" if r.valid_to is not None and r.valid_to < params["today"] else "not_yet_valid"
        elif r.price_fen is None:
            status = "no_item"
        elif r.kind in winners:
            status = "superseded"
        else:
            winners[r.kind] = r
            status = "applied" if r.kind == source else "outranked"
        lists.append(ConsideredList(r.id, r.name, r.kind, r.valid_from, r.valid_to, r.price_fen, status))

    rules = [(describe_rule(r.scope, r.target, r.effect), r.effect, bool(r.matches))
             for r in conn.execute(_explain_rules_statement(), params)]
    visible = bool(row.visible)
    denied = [text for text, effect, matches in rules if effect == "deny" and matches]
    allows = [(text, matches) for text, effect, matches in rules if effect == "allow"]
    if row.status != "active":
        note = "商品已下架，所有经销商都看不到、不能订购"
    elif denied:
        note = f"被规则“{denied[0]}”禁止，看不到、不能订购"
    elif allows:
        allowed = [text for text, matches in allows if matches]
        note = (f"规则“{allowed[0]}”允许，可见" if allowed
                else "该商品只对符合“允许”规则的经销商可见，本经销商都不符合，看不到、不能订购")
    else:
        note = "没有可见性规则，所有经销商可见"
    return PriceExplanation(today=params["today"], sku=row, price_fen=price_fen, source=source, lists=lists,
                            visible=visible, visibility_note=note, rules=rules)


# --- staff: price lists and their items (console, Excel import) ---------------------------
#
# Keyword arguments and the acting staff; role checked, input validated (DomainError with the
# field in `details`), audited in the same transaction. Pass `session=` to run several calls
# as one transaction that the caller commits (an import); otherwise each call commits.

KIND_LABELS = {"tier": "等级价", "dealer": "经销商专属价"}
MAX_ITEM_ERRORS = 50


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
    _catalogue_changed()


def _chunks(values, size=500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _catalogue_changed():
    from app.catalog.service import invalidate_catalogue

    invalidate_catalogue()
