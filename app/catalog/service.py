"""The catalogue as one dealer sees it: only visible SKUs, at its own price, with stock."""
from sqlalchemy import func, or_, select

from app.catalog.models import Category, Sku
from app.errors import NotFound
from app.extensions import db
from app.pricing.service import Buyer, available_column, price_columns, stock_level, visible_condition


def list_categories():
    return db.session.execute(select(Category).order_by(Category.sort, Category.id)).scalars().all()


def _product_select(buyer):
    price, source = price_columns(buyer)
    return select(
        Sku.id, Sku.code, Sku.name, Sku.spec, Sku.unit, Sku.pack_size, Sku.moq, Sku.step,
        Sku.list_price_fen, Sku.category_id, Sku.low_stock_qty, price, source, available_column(),
    )


def _as_product(row):
    available = max(row.available, 0)
    return {
        "id": row.id, "code": row.code, "name": row.name, "spec": row.spec, "unit": row.unit,
        "pack_size": row.pack_size, "moq": row.moq, "step": row.step,
        "price_fen": row.price_fen, "list_price_fen": row.list_price_fen,
        "price_source": row.price_source, "category_id": row.category_id,
        "stock": {"available": available, "level": stock_level(available, row.low_stock_qty)},
    }


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_products(*, dealer, category_id=None, q=None, page=1, page_size=20):
    """One page of SKUs visible to `dealer`, at its prices: (items, total)."""
    buyer = Buyer.of(dealer)
    where = [visible_condition(buyer)]
    if category_id is not None:
        where.append(Sku.category_id == category_id)
    if q:
        pattern = f"%{_escape_like(q.strip())}%"
        where.append(or_(
            Sku.name.like(pattern, escape="\\"), Sku.code.like(pattern, escape="\\"),
            Sku.spec.like(pattern, escape="\\"),
        ))
    total = db.session.execute(select(func.count()).select_from(Sku).where(*where)).scalar_one()
    rows = db.session.execute(
        _product_select(buyer).where(*where).order_by(Sku.category_id, Sku.id)
        .limit(page_size).offset((page - 1) * page_size)
    ).all()
    return [_as_product(r) for r in rows], total


def get_product(*, dealer, sku_id):
    """One SKU as this dealer sees it; hidden, inactive or unknown answers 404."""
    row = db.session.execute(
        _product_select(Buyer.of(dealer)).where(Sku.id == sku_id, visible_condition(Buyer.of(dealer)))
    ).first()
    if row is None:
        raise NotFound("商品不存在或不可订购", "sku_not_found")
    return _as_product(row)
