"""A dealer's shipping addresses and the region names they print with.

Addresses are loaded through the caller's dealer, so another dealer's address id answers
404 like a missing one.
"""
import functools
from types import SimpleNamespace

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import aliased

from app.database import write_transaction
from app.dealers.access import check_may_act, lock_dealer
from app.dealers.models import Address, Region
from app.extensions import db
from app.kernel.errors import DomainError, NotFound


@functools.cache
def _address_statement(which):
    """Addresses of a dealer with their province/city/district names, in one query.

    `which`: "one" (by id), "default" (the default, else the oldest) or "all".
    """
    province, city, district = aliased(Region), aliased(Region), aliased(Region)
    code = Address.region_code
    stmt = (
        select(
            Address.id, Address.contact_name, Address.phone, Address.region_code, Address.detail,
            Address.is_default, province.name.label("province"), city.name.label("city"),
            district.name.label("district"),
        )
        .outerjoin(province, province.code == func.substr(code, 1, 2) + "0000")
        .outerjoin(city, city.code == func.substr(code, 1, 4) + "00")
        .outerjoin(district, district.code == code)
        .where(Address.dealer_id == bindparam("dealer_id"))
        .order_by(Address.is_default.desc(), Address.id)
    )
    if which == "one":
        return stmt.where(Address.id == bindparam("address_id"))
    if which == "default":
        return stmt.limit(1)
    return stmt


def _address_view(row):
    region_names = "".join(readable_region_names([row.province, row.city, row.district]))
    return {
        "id": row.id, "contact_name": row.contact_name, "phone": row.phone,
        "region_code": row.region_code, "region_names": region_names, "detail": row.detail,
        "is_default": row.is_default, "full_text": region_names + row.detail,
    }


SHIP_TO_PREFIX = "ship_"


def ship_to(session, *, dealer_id, address_id=None):
    """The address an order ships to: the dealer's own by id (another dealer's answers
    404), else its default (422 if it has none). Includes `full_text` ("广东省广州市…")."""
    params = {"dealer_id": dealer_id}
    if address_id is not None:
        params["address_id"] = address_id
    row = session.connection().execute(_address_statement(_which_address(address_id)), params).first()
    return _ship_to_view(row, address_id)


def _which_address(address_id):
    return "default" if address_id is None else "one"


def _ship_to_view(row, address_id):
    if row is None:
        if address_id is not None:
            raise NotFound("收货地址不存在", "address_not_found")
        raise DomainError("address_required", "请先添加收货地址", 422)
    return _address_view(row)


def ship_to_columns(address_id):
    """Columns (named ship_*) that LEFT JOIN the address `ship_to` would choose onto
    another statement; binds :dealer_id (and :address_id). Judge with `ship_to_from_row`."""
    address = _address_statement(_which_address(address_id)).subquery("ship_to")
    return [column.label(SHIP_TO_PREFIX + column.name) for column in address.c], address


def ship_to_from_row(row, address_id):
    """`ship_to`'s answer from a row carrying `ship_to_columns` (404/422 when it chose none)."""
    if row is None or getattr(row, SHIP_TO_PREFIX + "id") is None:
        return _ship_to_view(None, address_id)
    n = len(SHIP_TO_PREFIX)
    fields = {key[n:]: value for key, value in row._mapping.items() if key.startswith(SHIP_TO_PREFIX)}
    return _address_view(SimpleNamespace(**fields))


def list_addresses(*, dealer_id):
    rows = db.session.connection().execute(_address_statement("all"), {"dealer_id": dealer_id})
    return [_address_view(row) for row in rows]


MAX_ADDRESSES = 50


def add_address(*, user, contact_name, phone, region_code, detail, is_default=False):
    """Add a shipping address. The first address, or one marked default, becomes default."""
    with write_transaction() as session:
        check_may_act(session, user)
        lock_dealer(session, user.dealer_id)
        if session.get(Region, region_code) is None:
            raise DomainError(
                "validation_error", "提交的数据有误，请检查后重试", 422,
                {"fields": {"region_code": ["地区编码不存在"]}},
            )
        count = len(session.execute(select(Address.id).where(Address.dealer_id == user.dealer_id)).all())
        if count >= MAX_ADDRESSES:
            raise DomainError("too_many_addresses", f"收货地址最多 {MAX_ADDRESSES} 个", 422)
        make_default = is_default or count == 0
        if make_default:
            session.execute(
                update(Address).where(Address.dealer_id == user.dealer_id).values(is_default=False)
            )
        address = Address(
            dealer_id=user.dealer_id,
            contact_name=contact_name,
            phone=phone,
            region_code=region_code,
            detail=detail,
            is_default=make_default,
        )
        session.add(address)
        session.flush()
        return ship_to(session, dealer_id=user.dealer_id, address_id=address.id)


def _region_codes(region_code):
    codes = []
    for candidate in (region_code[:2] + "0000", region_code[:4] + "00", region_code):
        if candidate not in codes:
            codes.append(candidate)
    return codes


# GB/T 2260 names the city level of municipalities "市辖区"; addresses never print it.
PLACEHOLDER_REGION_NAMES = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")


def readable_region_names(names):
    """Province/city/district names as written on a parcel: no repeats, no placeholders."""
    out = []
    for name in names:
        if name and name not in out and name not in PLACEHOLDER_REGION_NAMES:
            out.append(name)
    return out


def region_texts(region_codes, *, session=None):
    """{code: the region as people write it} for each of `region_codes`, in one query — the
    one naming every page, export and message uses: 440300 "广东省深圳市", 310100 "上海市"
    (GB/T 2260 calls a municipality's city level "市辖区"), 310101 "上海市黄浦区"; an unknown
    code stays itself."""
    wanted = {code for code in region_codes if code}
    parts = {part for code in wanted for part in _region_codes(code)}
    if not parts:
        return {}
    names = dict((session or db.session).execute(select(Region.code, Region.name).where(Region.code.in_(parts))).all())
    return {code: "".join(readable_region_names([names.get(p) for p in _region_codes(code)])) or code
            for code in wanted}


def region_text(region_code, *, session=None):
    """One region as people write it (see `region_texts`)."""
    return region_texts([region_code], session=session).get(region_code, region_code)

