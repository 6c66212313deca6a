"""The catalogue as one dealer sees it: only visible SKUs, at its own price, with stock."""
import functools
import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, tuple_

from app.audit import service as audit
from app.cache import app_cache
from app.catalog.models import (
    SKU_STATUS_LABELS,
    VISIBILITY_EFFECT_LABELS,
    VISIBILITY_SCOPE_LABELS,
    Category,
    Sku,
    VisibilityRule,
)
from app.database import joined_transaction
from app.extensions import db
from app.inventory import service as inventory
from app.kernel import inputs
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require
from app.pricing.service import (
    SKU_COLUMNS,
    Buyer,
    available_column,
    describe_rule,
    price_columns,
    resolve_price,
    stock_level,
    visible_condition,
)
from app.storage import StorageError, absolute, get_storage
from app.storage.images import inspect_image


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
        "image_url": image_url_of(row.image_key, row.image_url),
    }, row.low_stock_qty


def image_url_of(image_key, image_url):
    """The URL a product's picture loads from: the uploaded image (a signed link that lasts
    STORAGE_URL_TTL_SECONDS, far longer than a cached catalogue page), else the typed-in link
    (a path on this site made absolute inside a request), else None."""
    if image_key:
        return get_storage().url_for(image_key)
    if image_url and image_url.startswith("/"):
        return absolute(image_url)
    return image_url


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


def _matching(by_category, by_text):
    where = [visible_condition()]
    if by_category:
        where.append(Sku.category_id == bindparam("category_id"))
    if by_text:
        pattern = bindparam("pattern")
        where.append(or_(
            Sku.name.like(pattern, escape="\\"), Sku.code.like(pattern, escape="\\"),
            Sku.spec.like(pattern, escape="\\"),
        ))
    return where


@functools.cache
def _page_statement(by_category, by_text, keyset=False):
    """One page of visible SKUs with prices and stock: by OFFSET (`page`), or — `keyset` —
    the page after a cursor's SKU in catalogue order, which reads only the page's rows from
    `ix_skus_catalogue_order` however deep it is (`after`, see `catalogue_page`)."""
    # Choose the page on ids alone (in `ix_skus_catalogue_order`'s order), then price and stock
    # only the rows on the page: the price/stock subqueries run 20 times, not once per match.
    where = _matching(by_category, by_text)
    if keyset:
        where.append(tuple_(Sku.category_id, Sku.id) > tuple_(bindparam("after_category_id"), bindparam("after_id")))
    page = (
        select(Sku.id.label("page_id"))
        .where(*where)
        .order_by(Sku.category_id, Sku.id)
        .limit(bindparam("limit"))
    )
    if not keyset:
        page = page.offset(bindparam("offset"))
    page = page.subquery("page")
    return (
        select(*SKU_COLUMNS, *price_columns(), available_column())
        .join_from(Sku, page, page.c.page_id == Sku.id)
        .order_by(Sku.category_id, Sku.id)
    )


@functools.cache
def _count_statement(by_category, by_text):
    """How many SKUs match: counted apart from the page (a window count would make every page
    read every match — 20,000 SKUs for a brand — before its 20 rows) and cached with the pages."""
    return select(func.count()).select_from(Sku).where(*_matching(by_category, by_text))


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

    def next_after(self, page, page_size):
        """The cursor of the page after this one (page `page` of `page_size`), or None when
        this is the last: pass it back as `after` (`catalogue_page`)."""
        if len(self.items) < page_size or page * page_size >= self.total:
            return None
        last = self.items[-1][0]
        return f"{page + 1}.{last['category_id']}.{last['id']}"

    def with_stock(self, available):
        """The page's products with `available` ({sku_id: units}) as their stock."""
        return [_with_stock(p, available.get(p[0]["id"], 0)) for p in self.items]


EMPTY_PAGE = PricedPage(items=(), total=0)


def list_products(*, dealer, category_id=None, q=None, page=1, page_size=20):
    """One page of SKUs visible to `dealer`, at its prices, with live stock: (items, total)."""
    priced, available = catalogue_page(dealer=dealer, category_id=category_id, q=q, page=page, page_size=page_size)
    return priced.with_stock(available), priced.total


# A page cursor: "<page>.<category id>.<SKU id>", the page it opens and the last SKU before it.
AFTER_PATTERN = r"[1-9][0-9]{0,6}\.[1-9][0-9]{0,15}\.[1-9][0-9]{0,15}"


def parse_after(after):
    """(page, category id, SKU id) of an `after` cursor (`PricedPage.next_after`)."""
    page, category_id, sku_id = (int(part) for part in after.split("."))
    return page, category_id, sku_id


def catalogue_page(*, dealer, category_id=None, q=None, page=1, page_size=20, after=None):
    """One page of SKUs visible to `dealer` at its prices: (PricedPage, {sku_id: available}).

    `page` counts pages from the start (OFFSET: a deep page walks every SKU before it);
    `after`, the previous page's `PricedPage.next_after`, opens the page after that page's
    last SKU and costs the same at page 1,000 as at page 2. With `after`, `page` is the
    cursor's. The priced page (visibility, prices, order) may come from a per-process cache
    for CATALOGUE_CACHE_SECONDS; stock is always read now. Checkout re-prices from the database.
    """
    q = (q or "").strip()
    buyer = Buyer.of(dealer)
    params = buyer.params()
    cache = app_cache("catalogue_pages", "CATALOGUE_CACHE_SECONDS")
    key = (buyer, params["today"], category_id, q, page, page_size, after)
    cached = cache.get(key)
    if cached is not None:
        return cached, inventory.available_now(cached.sku_ids)

    if after is not None:
        _, params["after_category_id"], params["after_id"] = parse_after(after)
        params.update(limit=page_size)
    else:
        params.update(limit=page_size, offset=(page - 1) * page_size)
    if category_id is not None:
        params["category_id"] = category_id
    if q:
        params["pattern"] = f"%{_escape_like(q)}%"
    connection = db.session.connection()
    count_key = (buyer, params["today"], category_id, q, "count")
    total = cache.get(count_key)
    if total is None:
        total = connection.execute(_count_statement(category_id is not None, bool(q)), params).scalar_one()
        cache.put(count_key, total)
    statement = _page_statement(category_id is not None, bool(q), after is not None)
    rows = connection.execute(statement, params).all() if total else []
    priced = PricedPage(items=tuple(_priced(r) for r in rows), total=total) if rows or total else EMPTY_PAGE
    if rows:
        cache.put(key, priced)
    return priced, {r.id: r.available for r in rows}


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


# --- staff: managing the catalogue (console, Excel import) ---------------------------------
#
# Every function takes the acting staff member and keyword arguments, checks the role, validates
# (DomainError with the field in `details`), writes an audit entry with the change and owns its
# transaction — unless the caller passes `session=` to run several calls as one transaction
# (an import); then the caller commits or rolls back.

SKU_PAGE_SIZE = 50
_SKU_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_IMAGE_URL = re.compile(r"(https?://|/)[^\s\"'<>]{1,500}")


def invalidate_catalogue():
    """Forget this process's priced catalogue pages after a change to SKUs, prices, visibility
    or thresholds. Other processes see the change within CATALOGUE_CACHE_SECONDS."""
    app_cache("catalogue_pages", "CATALOGUE_CACHE_SECONDS").clear()


def set_low_stock_threshold(*, staff, sku_id, low_stock_qty, session=None):
    """Set a SKU's low-stock threshold: below it (units available across warehouses) dealers
    see 'low' and the console lists the SKU under 低库存. Audited (`stock.threshold`)."""
    require(staff, "stock.edit", "你的角色无权修改低库存阈值")
    low_stock_qty = inputs.integer(low_stock_qty, field="low_stock_qty", label="低库存阈值", minimum=0, maximum=inventory.MAX_ON_HAND)
    with joined_transaction(session) as s:
        sku = s.get(Sku, sku_id)
        if sku is None:
            raise NotFound("商品不存在", "sku_not_found")
        if sku.low_stock_qty != low_stock_qty:
            audit.record(s, actor=staff, action="stock.threshold", entity_type="sku", entity_id=sku.id,
                         label=f"{sku.code} {sku.name}", before={"low_stock_qty": sku.low_stock_qty},
                         after={"low_stock_qty": low_stock_qty})
            sku.low_stock_qty = low_stock_qty
    # The cached catalogue pages carry each SKU's threshold (the level is computed per request).
    invalidate_catalogue()
    return sku


def _category_name(value):
    return inputs.text(value, field="name", label="分类名称", max_len=64)


def create_category(*, staff, name, parent_id=None, sort=None, session=None):
    """A new category (optionally under `parent_id`); names are unique among siblings (409)."""
    require(staff, "catalog.edit", "你的角色无权修改商品分类")
    name = _category_name(name)
    with joined_transaction(session) as s:
        if parent_id not in (None, "") and s.get(Category, inputs.integer(parent_id, field="parent_id", label="上级分类", minimum=1)) is None:
            raise inputs.invalid("parent_id", "上级分类不存在")
        parent_id = int(parent_id) if parent_id not in (None, "") else None
        _check_category_name_free(s, name, parent_id)
        if sort in (None, ""):
            sort = (s.execute(select(func.max(Category.sort))).scalar() or 0) + 1
        category = Category(name=name, parent_id=parent_id, sort=inputs.integer(sort, field="sort", label="排序"))
        s.add(category)
        s.flush()
        audit.record(s, actor=staff, action="category.create", entity_type="category", entity_id=category.id,
                     label=name, after={"name": name, "parent_id": parent_id})
    invalidate_catalogue()
    return category


def rename_category(*, staff, category_id, name, session=None):
    require(staff, "catalog.edit", "你的角色无权修改商品分类")
    name = _category_name(name)
    with joined_transaction(session) as s:
        category = s.get(Category, category_id)
        if category is None:
            raise NotFound("分类不存在", "category_not_found")
        if category.name != name:
            _check_category_name_free(s, name, category.parent_id, besides=category.id)
            audit.record(s, actor=staff, action="category.rename", entity_type="category", entity_id=category.id,
                         label=name, before={"name": category.name}, after={"name": name})
            category.name = name
    invalidate_catalogue()
    return category


def _check_category_name_free(session, name, parent_id, besides=None):
    query = select(Category.id).where(Category.name == name, Category.parent_id.is_(None) if parent_id is None
                                      else Category.parent_id == parent_id)
    if besides is not None:
        query = query.where(Category.id != besides)
    if session.execute(query).first():
        raise DomainError("category_exists", f"已有名为“{name}”的分类", 409, {"field": "name"})


# SKU fields staff may set: name -> (check, audit label). Prices stay integer fen here; a form
# in yuan converts with `app.kernel.inputs.yuan` first.
def _sku_checks(session):
    def category(value):
        category_id = inputs.integer(value, field="category_id", label="分类", minimum=1, maximum=2**53)
        if session.get(Category, category_id) is None:
            raise inputs.invalid("category_id", "分类不存在")
        return category_id

    def image_url(value):
        value = inputs.text(value, field="image_url", label="图片地址", max_len=512, required=False)
        if value and not _IMAGE_URL.fullmatch(value):
            raise inputs.invalid("image_url", "图片地址应以 http://、https:// 或 / 开头，且不含空格和引号")
        return value or None

    return {
        "name": lambda v: inputs.text(v, field="name", label="商品名称", max_len=128),
        "spec": lambda v: inputs.text(v, field="spec", label="规格", max_len=64, required=False),
        "unit": lambda v: inputs.text(v, field="unit", label="单位", max_len=8),
        "pack_size": lambda v: inputs.integer(v, field="pack_size", label="每箱数量", minimum=1, maximum=100_000),
        "moq": lambda v: inputs.integer(v, field="moq", label="起订量", minimum=1, maximum=1_000_000),
        "step": lambda v: inputs.integer(v, field="step", label="订购倍数", minimum=1, maximum=1_000_000),
        "list_price_fen": lambda v: inputs.fen(v, field="list_price_fen", label="目录价"),
        "category_id": category,
        "status": lambda v: inputs.choice(v, field="status", label="状态", choices=SKU_STATUS_LABELS),
        "image_url": image_url,
        "low_stock_qty": lambda v: inputs.integer(v, field="low_stock_qty", label="低库存阈值", minimum=0, maximum=10**9),
    }


SKU_DEFAULTS = {"spec": "", "pack_size": 1, "moq": 1, "step": 1, "status": "active", "image_url": None, "low_stock_qty": 20}
SKU_REQUIRED = {"name": "商品名称", "unit": "单位", "list_price_fen": "目录价", "category_id": "分类"}


def _sku_fields(sku):
    return {name: getattr(sku, name) for name in ("code", *SKU_DEFAULTS, *SKU_REQUIRED)}


def _check_moq_step(fields):
    if fields["moq"] % fields["step"]:
        raise inputs.invalid("moq", f"起订量 {fields['moq']} 应是订购倍数 {fields['step']} 的整数倍")


def create_sku(*, staff, code, session=None, **fields):
    """A new SKU. Required: code (unique, letters/digits/.-_), name, unit, list_price_fen,
    category_id; optional: spec, pack_size, moq, step, status, image_url, low_stock_qty.
    Raises 422 (field in details) or 409 `sku_code_taken`."""
    require(staff, "catalog.edit", "你的角色无权新建商品")
    code = inputs.text(code, field="code", label="商品编码", max_len=32)
    if not _SKU_CODE.fullmatch(code):
        raise inputs.invalid("code", "商品编码只能包含字母、数字、点、横线和下划线，且以字母或数字开头")
    with joined_transaction(session) as s:
        checks = _sku_checks(s)
        unknown = set(fields) - set(checks)
        if unknown:
            raise inputs.invalid(sorted(unknown)[0], f"不认识的商品字段：{'、'.join(sorted(unknown))}")
        for name, label in SKU_REQUIRED.items():
            if fields.get(name) in (None, ""):
                raise inputs.invalid(name, f"{label}不能为空")
        clean = {**SKU_DEFAULTS, **{name: checks[name](value) for name, value in fields.items()}}
        _check_moq_step(clean)
        if s.execute(select(Sku.id).where(func.upper(Sku.code) == code.upper())).first():
            raise DomainError("sku_code_taken", f"商品编码 {code} 已存在", 409, {"field": "code"})
        sku = Sku(code=code, **clean)
        s.add(sku)
        s.flush()
        audit.record(s, actor=staff, action="sku.create", entity_type="sku", entity_id=sku.id,
                     label=f"{code} {sku.name}", after=_sku_fields(sku))
    invalidate_catalogue()
    return sku


def update_sku(*, staff, sku_id, session=None, **changes):
    """Change some fields of a SKU (the code stays); audited with only what changed."""
    require(staff, "catalog.edit", "你的角色无权修改商品")
    with joined_transaction(session) as s:
        sku = s.get(Sku, sku_id)
        if sku is None:
            raise NotFound("商品不存在", "sku_not_found")
        checks = _sku_checks(s)
        unknown = set(changes) - set(checks)
        if unknown:
            raise inputs.invalid(sorted(unknown)[0], f"不能修改的商品字段：{'、'.join(sorted(unknown))}")
        before = _sku_fields(sku)
        after = {**before, **{name: checks[name](value) for name, value in changes.items()}}
        _check_moq_step(after)
        old, new = audit.changed(before, after)
        if new:
            for name, value in new.items():
                setattr(sku, name, value)
            audit.record(s, actor=staff, action="sku.update", entity_type="sku", entity_id=sku.id,
                         label=f"{sku.code} {sku.name}", before=old, after=new)
    invalidate_catalogue()
    return sku


def set_sku_image(*, staff, sku_id, data):
    """Upload a product picture (JPEG/PNG/WebP, checked from its bytes, at most
    UPLOAD_MAX_BYTES) into app.storage and show it instead of the typed-in link; the picture
    it replaces is deleted. Audited. 413 too large, 422 not an image, 503 store unreachable."""
    from app.storage.service import too_large_error

    require(staff, "catalog.edit", "你的角色无权修改商品图片")
    config = current_app.config
    if not data:
        raise DomainError("empty_file", "请选择要上传的图片", 422, {"field": "image"})
    if len(data) > config["UPLOAD_MAX_BYTES"]:
        raise too_large_error()
    content_type, _, _ = inspect_image(data, max_pixels=config["UPLOAD_MAX_PIXELS"])
    if db.session.get(Sku, sku_id) is None:
        raise NotFound("商品不存在", "sku_not_found")
    storage = get_storage()
    try:
        key = storage.put(data, content_type, "sku")
    except StorageError:
        raise DomainError("storage_unavailable", "图片存储暂时不可用，请稍后重试", 503) from None
    try:
        old_key = _replace_image_key(staff, sku_id, key, action="sku.image_upload")
    except BaseException:
        _delete_quietly(storage, key)
        raise
    if old_key:
        _delete_quietly(storage, old_key)
    invalidate_catalogue()


def remove_sku_image(*, staff, sku_id):
    """Stop showing the uploaded picture (the typed-in link, if any, shows again); audited."""
    require(staff, "catalog.edit", "你的角色无权修改商品图片")
    old_key = _replace_image_key(staff, sku_id, None, action="sku.image_remove")
    if old_key:
        _delete_quietly(get_storage(), old_key)
    invalidate_catalogue()


def _replace_image_key(staff, sku_id, key, *, action):
    with joined_transaction() as s:
        sku = s.get(Sku, sku_id)
        if sku is None:
            raise NotFound("商品不存在", "sku_not_found")
        old_key = sku.image_key
        if old_key != key:
            sku.image_key = key
            audit.record(s, actor=staff, action=action, entity_type="sku", entity_id=sku.id,
                         label=f"{sku.code} {sku.name}", before={"image_key": old_key}, after={"image_key": key})
    return old_key


def _delete_quietly(storage, key):
    try:
        storage.delete(key)
    except Exception:  # the row no longer points at it; an orphaned object harms nobody
        current_app.logger.exception("could not delete stored image %s", key)


def sku_by_code(code):
    """The SKU with this code (any case), or None."""
    return db.session.execute(select(Sku).where(func.upper(Sku.code) == (code or "").strip().upper())).scalar_one_or_none()


def list_skus(*, staff, q=None, category_id=None, status=None, page=1, page_size=SKU_PAGE_SIZE):
    """One page of SKUs for the console, by category then code: ([(Sku, category name)], total).
    `q` matches code, name or spec (LIKE wildcards are literal)."""
    require(staff, "catalog.view", "你的角色无权查看商品")
    where = []
    if q:
        pattern = f"%{_escape_like(q)}%"
        where.append(or_(Sku.code.ilike(pattern, escape="\\"), Sku.name.ilike(pattern, escape="\\"),
                         Sku.spec.ilike(pattern, escape="\\")))
    if category_id is not None:
        where.append(or_(Sku.category_id == category_id,
                         Sku.category_id.in_(select(Category.id).where(Category.parent_id == category_id))))
    if status is not None:
        where.append(Sku.status == inputs.choice(status, field="status", label="状态", choices=SKU_STATUS_LABELS))
    base = select(Sku, Category.name.label("category_name")).join(Category, Category.id == Sku.category_id).where(*where)
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.session.execute(
        base.order_by(Category.sort, Category.id, Sku.code).limit(page_size).offset((page - 1) * page_size)
    ).all()
    return rows, total


def get_sku(*, staff, sku_id):
    require(staff, "catalog.view", "你的角色无权查看商品")
    sku = db.session.get(Sku, sku_id)
    if sku is None:
        raise NotFound("商品不存在", "sku_not_found")
    return sku


# --- visibility rules -----------------------------------------------------------------------

def visibility_rules(sku_id, session=None):
    return (session or db.session).execute(
        select(VisibilityRule).where(VisibilityRule.sku_id == sku_id).order_by(VisibilityRule.id)
    ).scalars().all()


def save_visibility_rules(*, staff, sku_id, rules, session=None):
    """Replace a SKU's visibility rules with `rules` ([{scope, target, effect}]): `tier` by tier
    code, `region` by region code (a province covers its cities), `dealer` by dealer code.
    The meaning is the mini-program's (see `VisibilityRule`): a matching deny hides the SKU;
    with any allow rule only matching dealers see it; no rules, every dealer does."""
    from app.dealers.models import Dealer, Region, Tier

    require(staff, "catalog.edit", "你的角色无权修改商品可见范围")
    if not isinstance(rules, (list, tuple)) or len(rules) > 200:
        raise inputs.invalid("rules", "可见性规则应为列表，最多 200 条")
    with joined_transaction(session) as s:
        sku = s.get(Sku, sku_id)
        if sku is None:
            raise NotFound("商品不存在", "sku_not_found")
        known = {
            "tier": (Tier.code, "等级"), "region": (Region.code, "地区"), "dealer": (Dealer.code, "经销商"),
        }
        clean = []
        for i, rule in enumerate(rules):
            field = f"rules.{i}"
            scope = inputs.choice((rule or {}).get("scope"), field=field, label=f"第 {i + 1} 条规则的范围",
                                  choices=VISIBILITY_SCOPE_LABELS)
            effect = inputs.choice(rule.get("effect"), field=field, label=f"第 {i + 1} 条规则的效果",
                                   choices=VISIBILITY_EFFECT_LABELS)
            target = inputs.text(rule.get("target"), field=field, label=f"第 {i + 1} 条规则的对象", max_len=32)
            column, label = known[scope]
            stored = s.execute(select(column).where(func.upper(column) == target.upper())).scalar()
            if stored is None:
                raise inputs.invalid(field, f"第 {i + 1} 条规则：{label} {target} 不存在")
            if (scope, stored, effect) not in clean:
                clean.append((scope, stored, effect))
        current = visibility_rules(sku.id, session=s)
        before = [describe_rule(r.scope, r.target, r.effect) for r in current]
        after = [describe_rule(*r) for r in clean]
        if sorted(before) != sorted(after):
            for rule in current:
                s.delete(rule)
            s.flush()
            s.add_all(VisibilityRule(sku_id=sku.id, scope=sc, target=t, effect=e) for sc, t, e in clean)
            audit.record(s, actor=staff, action="visibility.save", entity_type="sku", entity_id=sku.id,
                         label=f"{sku.code} {sku.name}", before={"rules": before}, after={"rules": after})
    invalidate_catalogue()
    return clean
