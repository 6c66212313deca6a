"""The catalogue as one dealer sees it: only visible SKUs, at its own price, with stock."""
import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, over, select

from app.cache import app_cache
from app.catalog.models import Category, Sku
from app.errors import NotFound
from app.extensions import db
from app.inventory import service as inventory
from app.pricing.service import (
    SKU_COLUMNS,
    Buyer,
    available_column,
    price_columns,
    resolve_price,
    stock_level,
    visible_condition,
)


def list_categories():
    return db.session.execute(select(Category).order_by(Category.sort, Category.id)).scalars().all()


def _priced(row):
    """A product as this dealer sees it, without stock: (fields, low-stock threshold)."""
    price_fen, source = resolve_price(row)
    return {
        "id": row.id, "code": row.code, "name": row.name, "spec": row.spec, "unit": row.unit,
        "pack_size": row.pack_size, "moq": row.moq, "step": row.step,
        "price_fen": price_fen, "list_price_fen": row.list_price_fen,
        "price_source": source, "category_id": row.category_id,
    }, row.low_stock_qty


def stock_of(available, low_stock_qty):
    """What a dealer is told about a SKU's stock: {available (never below 0), level}."""
    available, level = stock_figures(available, low_stock_qty)
    return {"available": available, "level": level}


def stock_figures(available, low_stock_qty):
    """`stock_of` as an (available, level) pair."""
    available = available if available > 0 else 0
    return available, stock_level(available, low_stock_qty)


def _with_stock(priced, available):
    fields, low_stock_qty = priced
    return {**fields, "stock": stock_of(available, low_stock_qty)}


def _as_product(row):
    return _with_stock(_priced(row), row.available)


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@functools.cache
def _page_statement(by_category, by_text):
    """One page of visible SKUs with prices, stock and the total count (window function)."""
    where = [visible_condition()]
    if by_category:
        where.append(Sku.category_id == bindparam("category_id"))
    if by_text:
        pattern = bindparam("pattern")
        where.append(or_(
            Sku.name.like(pattern, escape="\\"), Sku.code.like(pattern, escape="\\"),
            Sku.spec.like(pattern, escape="\\"),
        ))
    # Choose the page (and count all matches) on ids alone, then price and stock only
    # the rows on the page: the price/stock subqueries run 20 times, not once per match.
    page = (
        select(Sku.id.label("page_id"), over(func.count()).label("total"))
        .where(*where)
        .order_by(Sku.category_id, Sku.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    return (
        select(*SKU_COLUMNS, *price_columns(), available_column(), page.c.total)
        .join_from(Sku, page, page.c.page_id == Sku.id)
        .order_by(Sku.category_id, Sku.id)
    )


@dataclass(eq=False)
class PricedPage:
    """One page of the catalogue as a dealer sees it, without stock: what may be cached.

    `items` are (fields, low-stock threshold) pairs in page order; compared by identity,
    so an interface may keep its own rendering of a page beside it (see miniprogram_api).
    """

    items: tuple
    total: int

    @property
    def sku_ids(self):
        return [fields["id"] for fields, _ in self.items]

    def with_stock(self, available):
        """The page's products with `available` ({sku_id: units}) as their stock."""
        return [_with_stock(p, available.get(p[0]["id"], 0)) for p in self.items]


EMPTY_PAGE = PricedPage(items=(), total=0)


def list_products(*, dealer, category_id=None, q=None, page=1, page_size=20):
    """One page of SKUs visible to `dealer`, at its prices, with live stock: (items, total)."""
    priced, available = catalogue_page(dealer=dealer, category_id=category_id, q=q, page=page, page_size=page_size)
    return priced.with_stock(available), priced.total


def catalogue_page(*, dealer, category_id=None, q=None, page=1, page_size=20):
    """One page of SKUs visible to `dealer` at its prices: (PricedPage, {sku_id: available}).

    The priced page (visibility, prices, order) may come from a per-process cache for
    CATALOGUE_CACHE_SECONDS; stock is always read now. Checkout re-prices from the database.
    """
    q = (q or "").strip()
    buyer = Buyer.of(dealer)
    params = buyer.params()
    cache = app_cache("catalogue_pages", "CATALOGUE_CACHE_SECONDS")
    key = (buyer, params["today"], category_id, q, page, page_size)
    cached = cache.get(key)
    if cached is not None:
        return cached, inventory.available_now(cached.sku_ids)

    params.update(limit=page_size, offset=(page - 1) * page_size)
    if category_id is not None:
        params["category_id"] = category_id
    if q:
        params["pattern"] = f"%{_escape_like(q)}%"
    rows = db.session.connection().execute(_page_statement(category_id is not None, bool(q)), params).all()
    if rows:
        priced = PricedPage(items=tuple(_priced(r) for r in rows), total=rows[0].total)
        cache.put(key, priced)
        return priced, {r.id: r.available for r in rows}
    if page == 1:
        return EMPTY_PAGE, {}
    # Past the last page: the window count has no row to ride on; count separately.
    first = dict(params, limit=1, offset=0)
    row = db.session.connection().execute(_page_statement(category_id is not None, bool(q)), first).first()
    return PricedPage(items=(), total=row.total if row else 0), {}


@functools.cache
def _one_statement():
    return select(*SKU_COLUMNS, *price_columns(), available_column()).where(
        Sku.id == bindparam("sku_id"), visible_condition()
    )


def get_product(*, dealer, sku_id):
    """One SKU as this dealer sees it; hidden, inactive or unknown answers 404."""
    row = db.session.connection().execute(_one_statement(), {**Buyer.of(dealer).params(), "sku_id": sku_id}).first()
    if row is None:
        raise NotFound("商品不存在或不可订购", "sku_not_found")
    return _as_product(row)
