"""Why a dealer pays what it pays for a SKU today (the console's price explanation), and
why an order line cost what it did (`line_basis`: what the line recorded when it was priced).

The price and visibility come from the very statements the catalogue and checkout use
(`app.pricing.service`); the list-by-list account reads the lists with the same validity
condition and precedence. An order line's account is never recomputed from today's lists:
it is the list id, name and version the line stored (`PricedLine.price_list_*`).
"""
import functools
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select

from app.catalog.models import Sku, VisibilityRule
from app.pricing.models import PriceList, PriceListItem
from app.pricing.service import (
    PRICE_SOURCES,
    describe_rule,
    list_precedence,
    list_target,
    list_valid_today,
    priced_columns,
    resolve_price,
    rule_matches,
)

LIST_STATUS_LABELS = {
    "applied": "采用",
    "outranked": "有效，但经销商专属价优先",
    "superseded": "有效，但被更晚生效的同类价目表取代",
    "no_item": "有效，但没有这个商品的价格",
    "expired": "已过期",
    "not_yet_valid": "尚未生效",
}
SOURCE_LABELS = {"dealer": "经销商专属价", "tier": "等级价", "list": "目录价"}


@dataclass
class ConsideredList:
    id: int
    name: str
    kind: str
    valid_from: object
    valid_to: object
    price_fen: int | None  # the list's price for the SKU, None if it has none
    status: str
    version: int = 1

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

    @property
    def applied(self):
        """The list the price came from (None: the SKU's list price)."""
        return next((pl for pl in self.lists if pl.status == "applied"), None)


NOT_RECORDED = "下单时未记录"


@dataclass(frozen=True)
class LineBasis:
    """Why a priced or order line cost what it did, as the line itself recorded it when it
    was priced: the source and the list (id, name, version) as they were then. Lines of
    orders placed before lines recorded their list have a dealer or tier source and no list
    (`recorded` False): which list it was is unknown, and is not guessed from today's lists."""

    source: str
    unit_price_fen: int
    price_list_id: int | None
    price_list_name: str | None
    price_list_version: int | None

    @property
    def source_label(self):
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def from_a_list(self):
        return self.source in ("dealer", "tier")

    @property
    def recorded(self):
        return not self.from_a_list or self.price_list_id is not None

    @property
    def list_text(self):
        """'鑫达专属价（第 3 版）', '下单时未记录', or '' for a price from no list."""
        if not self.from_a_list:
            return ""
        if self.price_list_id is None:
            return NOT_RECORDED
        return f"{self.price_list_name}（第 {self.price_list_version} 版）"

    @property
    def text(self):
        """One line for people: '经销商专属价 · 鑫达专属价（第 3 版）', '目录价'."""
        return f"{self.source_label} · {self.list_text}" if self.list_text else self.source_label


def line_basis(line):
    """The `LineBasis` of a priced line or an order line (anything with the stored fields)."""
    return LineBasis(line.price_source, line.unit_price_fen, line.price_list_id, line.price_list_name,
                     line.price_list_version)


@dataclass(frozen=True)
class ListNow:
    """A recorded list as it is now, to say whether it changed after the line was priced."""

    id: int
    name: str
    version: int

    def changed_since(self, basis):
        return self.version != basis.price_list_version


def list_now(session, basis):
    """The `ListNow` of the list a `LineBasis` recorded; None if it recorded none, or the
    list no longer exists."""
    if basis.price_list_id is None:
        return None
    row = session.execute(
        select(PriceList.id, PriceList.name, PriceList.version).where(PriceList.id == basis.price_list_id)
    ).first()
    return ListNow(*row) if row is not None else None


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
               PriceList.version, item_price.label("price_fen"), list_valid_today().label("valid"))
        .where(or_(and_(PriceList.kind == "dealer", list_target("dealer")),
                   and_(PriceList.kind == "tier", list_target("tier"))))
        .order_by(*list_precedence())
    )


@functools.cache
def _explain_rules_statement():
    rule = VisibilityRule
    return (
        select(rule.scope, rule.target, rule.effect, rule_matches().label("matches"))
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
        lists.append(ConsideredList(r.id, r.name, r.kind, r.valid_from, r.valid_to, r.price_fen, status, r.version))

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
