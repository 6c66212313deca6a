"""The one place prices are computed.

For a dealer and SKU the unit price is the first that applies of: the dealer's own price
list, the dealer's tier price list, the SKU's list price. Only lists valid today count
(`valid_from <= today <= valid_to`, open-ended when `valid_to` is NULL); among several
valid lists of one kind the most recently started wins. Visibility rules decide whether
a SKU exists for the dealer at all (see `VisibilityRule`).

Beside it: `app.pricing.explain` (the console's "why this price") and
`app.pricing.price_lists` (staff editing price lists and their items).
"""
import functools
from dataclasses import dataclass, field, fields

from sqlalchemy import (
    BigInteger,
    Date,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
)

from app.catalog.models import Sku, VisibilityRule
from app.inventory.models import Stock
from app.kernel.clock import business_today
from app.kernel.money import line_amount
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
        """Bind parameters for the statements built by this module (a new dict each call:
        callers add their own). Worked out once per buyer and business day (`_params`)."""
        return dict(_params(self, today or business_today()))


@functools.lru_cache(maxsize=4096)
def _params(buyer, today):
    """`Buyer.params` for one buyer and day. A process-wide cache: a `Buyer` is built per
    request (from the dealer, or fresh from the database in a write), but equal buyers hash
    alike, and the day is part of the key."""
    code = buyer.region_code
    # `region_targets` as three fixed binds (repeats are harmless in an IN), so the
    # statements have no expanding parameter: one text, nothing re-rendered per execute.
    return {
        "dealer_id": buyer.dealer_id,
        "dealer_code": buyer.dealer_code,
        "tier_id": buyer.tier_id,
        "tier_code": buyer.tier_code,
        "region": code,
        "region_city": code[:4] + "00",
        "region_province": code[:2] + "0000",
        "today": today,
    }


# The SQL below is built once with bind parameters (see `Buyer.params`), so a request
# pays only for executing an already-compiled statement, not for building it.

def rule_matches():
    rule = VisibilityRule
    return or_(
        and_(rule.scope == "tier", rule.target == bindparam("tier_code")),
        and_(rule.scope == "dealer", rule.target == bindparam("dealer_code")),
        and_(rule.scope == "region",
             rule.target.in_([bindparam("region"), bindparam("region_city"), bindparam("region_province")])),
    )


def visible_condition():
    """SQL condition on `Sku`: active and visible to the buyer in the bind parameters."""
    rule = VisibilityRule
    # `IN (the rules' SKU ids)` rather than a correlated EXISTS: PostgreSQL hashes each set once
    # instead of probing the rules for every SKU walked (a deep catalogue page walks thousands).
    denied = Sku.id.in_(select(rule.sku_id).where(rule.effect == "deny", rule_matches()))
    has_allow = Sku.id.in_(select(rule.sku_id).where(rule.effect == "allow"))
    allowed = Sku.id.in_(select(rule.sku_id).where(rule.effect == "allow", rule_matches()))
    return and_(Sku.status == "active", ~denied, or_(~has_allow, allowed))


def describe_rule(scope, target, effect):
    from app.catalog.models import VISIBILITY_EFFECT_LABELS, VISIBILITY_SCOPE_LABELS

    return f"{VISIBILITY_EFFECT_LABELS.get(effect, effect)}{VISIBILITY_SCOPE_LABELS.get(scope, scope)} {target}"


# Which lists a buyer's prices come from, which of them count today and which wins: shared
# by the price columns below (what dealers pay) and `explain_price` (the console's "why").
PRICE_SOURCES = ("dealer", "tier", "list")  # first that has a price wins (`resolve_price`)


def list_target(kind):
    return PriceList.dealer_id == bindparam("dealer_id") if kind == "dealer" else PriceList.tier_id == bindparam("tier_id")


def list_valid_today():
    today = bindparam("today", type_=Date)
    return and_(PriceList.valid_from <= today, or_(PriceList.valid_to.is_(None), PriceList.valid_to >= today))


def list_precedence():
    """Among valid lists of one kind that price a SKU, the most recently started wins."""
    return PriceList.valid_from.desc(), PriceList.id.desc()


def _from_winning_list(kind, column):
    """`column` (of `PriceListItem` or `PriceList`) of the list of `kind` that prices `Sku`
    for the buyer in the bind parameters today (NULL where none does)."""
    return (
        select(column)
        .select_from(PriceListItem)
        .join(PriceList, PriceList.id == PriceListItem.price_list_id)
        .where(PriceListItem.sku_id == Sku.id, PriceList.kind == kind, list_target(kind), list_valid_today())
        .order_by(*list_precedence())
        .limit(1)
        .scalar_subquery()
    )


def price_columns():
    """The dealer-list and tier-list price of `Sku` (NULL where none applies)."""
    return (_from_winning_list("dealer", PriceListItem.price_fen).label("dealer_price_fen"),
            _from_winning_list("tier", PriceListItem.price_fen).label("tier_price_fen"))


# What a priced line records of the list that gave its price (`PricedLine.price_list_*`).
LIST_FACTS = {"id": PriceList.id, "name": PriceList.name, "version": PriceList.version}


def price_list_columns():
    """`price_columns` plus the id, name and version of each kind's winning list
    (`dealer_list_id`, ..., `tier_list_version`): what a quote needs to say which list, as
    it is in this very statement, gave the price. The catalogue reads only the prices."""
    return (*price_columns(), *(
        _from_winning_list(kind, column).label(f"{kind}_list_{fact}")
        for kind in ("dealer", "tier") for fact, column in LIST_FACTS.items()
    ))


def resolve_price(row):
    """(unit price, source) from a row carrying the columns of `price_columns`."""
    if row.dealer_price_fen is not None:
        return row.dealer_price_fen, "dealer"
    if row.tier_price_fen is not None:
        return row.tier_price_fen, "tier"
    return row.list_price_fen, "list"


def resolve_price_list(row, source):
    """(id, name, version) of the list that gave a row's price (`price_list_columns`), for
    the `source` that `resolve_price` named; (None, None, None) for the SKU's list price."""
    if source == "list":
        return None, None, None
    return tuple(getattr(row, f"{source}_list_{fact}") for fact in LIST_FACTS)


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
    return select(*SKU_COLUMNS, *price_list_columns(), available_column()).where(
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
    prices with the lists that give them and whether the buyer in the bind parameters may
    see it (`visible`)."""
    return (*SKU_COLUMNS, *price_list_columns(), visible_condition().label("visible"))


def priced_skus(session, buyer, sku_ids, today=None):
    """{sku_id: row} for the requested ids that are visible to the buyer.

    Each row has the SKU's fields, the list prices with their lists (see `resolve_price`,
    `resolve_price_list`) and `available`.
    Ids that are unknown, inactive or hidden are simply absent.
    """
    if not sku_ids:
        return {}
    params = {**buyer.params(today), "sku_ids": sorted(set(sku_ids))}
    rows = session.connection().execute(_priced_skus_statement(), params)
    return {row.id: row for row in rows}


def stored(sql_type, **kwargs):
    """A field of `PricedLine` that an order line snapshots; `sql_type` is the PostgreSQL
    type of the array the order's one-statement write passes its values in."""
    return field(metadata={"sql_type": sql_type}, **kwargs)


@dataclass(kw_only=True)
class PricedLine:
    """One priced line of a quote: the one declaration of a line's shape.

    The `stored(...)` fields are what an order line keeps (`LINE_FIELDS`, in this order):
    `app.orders.models.OrderLine` has a column for each (with its migration), the order
    write inserts each (`app.orders.writing`, both paths), the presenters show each and the
    API schema `app.orders.schemas.PricedLineOut` declares each — `tests/test_line_shape.py`
    fails if one of them misses a field. A new line field (a discount with its reason, a
    gift flag) is a `stored(...)` field here, a column with its migration, a schema field.
    """

    sku_id: int = stored("bigint")
    sku_code: str = stored("text", default="")
    name: str = stored("text", default="")
    spec: str = stored("text", default="")
    unit: str = stored("text", default="")
    qty: int = stored("integer")
    list_price_fen: int = stored("bigint", default=0)
    unit_price_fen: int = stored("bigint", default=0)
    amount_fen: int = stored("bigint", default=0)
    price_source: str = stored("text", default="")
    # The list that gave `unit_price_fen` as it was when priced: None for the SKU's list
    # price ("list"), and on lines of orders placed before lines recorded it.
    price_list_id: int | None = stored("bigint", default=None)
    price_list_name: str | None = stored("text", default=None)
    price_list_version: int | None = stored("integer", default=None)
    available: int = 0  # units available when priced (not stored)


# {field name: PostgreSQL type} of what an order line stores of a priced line, in order.
LINE_FIELDS = {f.name: f.metadata["sql_type"] for f in fields(PricedLine) if "sql_type" in f.metadata}


def stored_line_values(line):
    """{field: value} of `LINE_FIELDS` read from a priced line or an order line."""
    return {name: getattr(line, name) for name in LINE_FIELDS}


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
        list_id, list_name, list_version = resolve_price_list(row, source)
        line = PricedLine(
            sku_id=sku_id, qty=qty, sku_code=row.code, name=row.name, spec=row.spec, unit=row.unit,
            list_price_fen=row.list_price_fen, unit_price_fen=price_fen,
            amount_fen=line_amount(price_fen, qty), price_source=source,
            price_list_id=list_id, price_list_name=list_name, price_list_version=list_version,
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
