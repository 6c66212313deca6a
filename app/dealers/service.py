"""Dealers, their mini-program users, invite codes and addresses.

Every dealer-owned row is loaded through a helper that scopes by the caller's dealer,
so a foreign id is indistinguishable from a missing one (404).
"""
import functools
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.cache import app_cache
from app.database import write_transaction
from app.dealers.models import (
    DEALER_STATUSES,
    ORDERING_ROLES,
    USER_ROLES,
    Address,
    Dealer,
    DealerUser,
    InviteCode,
    Region,
    Tier,
)
from app.errors import DomainError, NotFound
from app.extensions import db
from app.funds.service import credit_summary
from app.models_base import utcnow
from app.pricing.service import Buyer

TOKEN_SALT = "dinghuo.mp.login"
# No 0/O/1/I/L: invite codes are read aloud and typed on phones.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_LENGTH = 8


# --- tokens -----------------------------------------------------------------

def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(openid):
    """A signed bearer token naming the WeChat user; valid TOKEN_TTL_SECONDS."""
    return _serializer().dumps({"oid": openid})


VERIFIED_TOKENS_MAX = 4096


def openid_from_token(token):
    """The openid a valid token names; raises 401 `token_expired` / `token_invalid`.

    A token whose signature this process has already checked is not checked again (the
    HMAC is a tenth of a cached catalogue read): the process remembers which openid it
    names and when it was signed, and its age is still checked on every request.
    """
    max_age = current_app.config["TOKEN_TTL_SECONDS"]
    verified = current_app.extensions.setdefault("dinghuo_verified_tokens", {})
    known = verified.get(token)
    if known is not None and 0 <= int(time.time()) - known[1] <= max_age:
        return known[0]
    try:
        payload, signed_at = _serializer().loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        verified.pop(token, None)
        raise DomainError("token_expired", "登录已过期，请重新登录", 401) from None
    except BadSignature:
        raise DomainError("token_invalid", "登录凭证无效，请重新登录", 401) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("oid"), str):
        raise DomainError("token_invalid", "登录凭证无效，请重新登录", 401)
    if len(verified) >= VERIFIED_TOKENS_MAX:
        verified.clear()
    verified[token] = (payload["oid"], int(signed_at.timestamp()))
    return payload["oid"]


@dataclass(frozen=True)
class TierRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class RegionRef:
    code: str
    name: str


@dataclass(frozen=True)
class DealerRef:
    id: int
    code: str
    name: str
    status: str
    tier_id: int
    region_code: str
    tier: TierRef
    region: RegionRef


@dataclass(frozen=True)
class Caller:
    """The dealer user behind a request, read in one query (same attributes as DealerUser)."""

    id: int
    dealer_id: int
    role: str
    name: str | None
    openid: str
    dealer: DealerRef


@functools.cache
def _caller_statement():
    return (
        select(
            DealerUser.id, DealerUser.dealer_id, DealerUser.role, DealerUser.name, DealerUser.openid,
            Dealer.code, Dealer.name.label("dealer_name"), Dealer.status, Dealer.tier_id, Dealer.region_code,
            Tier.code.label("tier_code"), Tier.name.label("tier_name"), Region.name.label("region_name"),
        )
        .join(Dealer, Dealer.id == DealerUser.dealer_id)
        .join(Tier, Tier.id == Dealer.tier_id)
        .join(Region, Region.code == Dealer.region_code)
        .where(DealerUser.openid == bindparam("openid"), DealerUser.active.is_(True))
    )


def user_for_openid(openid):
    """The active dealer user bound to this openid, or None if not bound (yet).

    A bound caller may be reused from a per-process cache for CALLER_CACHE_SECONDS; writes
    that depend on the user's role or the dealer's status re-check them in their transaction.
    """
    cache = app_cache("callers", "CALLER_CACHE_SECONDS")
    caller = cache.get(openid)
    if caller is None:
        caller = _load_caller(openid)
        if caller is not None:
            cache.put(openid, caller)
    return caller


def _load_caller(openid):
    row = db.session.connection().execute(_caller_statement(), {"openid": openid}).first()
    if row is None:
        return None
    dealer = DealerRef(
        id=row.dealer_id, code=row.code, name=row.dealer_name, status=row.status, tier_id=row.tier_id,
        region_code=row.region_code, tier=TierRef(row.tier_id, row.tier_code, row.tier_name),
        region=RegionRef(row.region_code, row.region_name),
    )
    return Caller(id=row.id, dealer_id=row.dealer_id, role=row.role, name=row.name, openid=row.openid, dealer=dealer)


# --- login and binding ------------------------------------------------------

def login_with_code(*, js_code, gateway):
    """Exchange a `wx.login` code for our token. Raises 401 for a bad or reused code."""
    from app.integrations.wechat import WeChatError, WeChatUnavailable

    try:
        session = gateway.code_to_session(js_code)
    except WeChatUnavailable:
        raise DomainError("wechat_unavailable", "微信服务暂时不可用，请稍后重试", 503) from None
    except WeChatError as exc:
        if exc.errcode in (40029, 40163):
            raise DomainError(
                "invalid_login_code",
                "登录码无效或已被使用，请重新打开小程序登录",
                401,
                {"wechat_errcode": exc.errcode},
            ) from None
        if exc.errcode == 45011:
            raise DomainError("login_rate_limited", "登录过于频繁，请稍后再试", 429) from None
        raise DomainError(
            "wechat_error", "微信登录失败，请稍后重试", 502, {"wechat_errcode": exc.errcode}
        ) from None
    openid = session["openid"]
    user = user_for_openid(openid)
    db.session.rollback()
    return {
        "token": issue_token(openid),
        "expires_in": current_app.config["TOKEN_TTL_SECONDS"],
        "bound": user is not None,
    }


def _normalize_invite(code):
    return "".join(code.split()).upper()


def bind_invite(*, openid, invite_code, name=None):
    """Bind this WeChat user to the dealer user the invite creates. Single use, expiring.

    Raises 404 `invite_not_found`, 410 `invite_used` / `invite_expired`, 409 `already_bound`.
    """
    code = _normalize_invite(invite_code)
    try:
        return _bind(openid, code, name)
    except IntegrityError:
        # A concurrent bind of the same WeChat user won the unique openid.
        raise DomainError("already_bound", "该微信已绑定经销商账号，无需重复绑定", 409) from None


def _bind(openid, code, name):
    with write_transaction() as session:
        bound = session.execute(
            select(DealerUser).where(DealerUser.openid == openid).with_for_update(of=DealerUser)
        ).scalar_one_or_none()
        if bound is not None and bound.active:
            raise DomainError("already_bound", "该微信已绑定经销商账号，无需重复绑定", 409)
        if bound is not None:
            # A deactivated account keeps its history but lets go of the WeChat user.
            bound.openid = None
            session.flush()
        invite = session.execute(
            select(InviteCode).where(InviteCode.code == code).with_for_update()
        ).scalar_one_or_none()
        if invite is None:
            raise DomainError("invite_not_found", "邀请码不存在，请核对后重新输入", 404)
        if invite.used_at is not None:
            raise DomainError("invite_used", "该邀请码已被使用，请联系业务员重新获取", 410)
        if invite.expires_at <= utcnow():
            raise DomainError("invite_expired", "该邀请码已过期，请联系业务员重新获取", 410)
        user = DealerUser(dealer_id=invite.dealer_id, role=invite.role, openid=openid, name=name)
        session.add(user)
        session.flush()
        # Conditional update: if another request used the code meanwhile, nothing matches.
        used = session.execute(
            update(InviteCode)
            .where(InviteCode.id == invite.id, InviteCode.used_at.is_(None))
            .values(used_at=utcnow(), used_by_id=user.id)
        ).rowcount
        if used != 1:
            raise DomainError("invite_used", "该邀请码已被使用，请联系业务员重新获取", 410)
    return user


def create_invite(*, dealer_code, role="owner", ttl_days=None):
    """A fresh single-use invite code for a dealer. Raises 404 for an unknown dealer."""
    if role not in USER_ROLES:
        raise DomainError("invalid_role", f"角色必须是 {'/'.join(USER_ROLES)} 之一", 422)
    ttl = ttl_days if ttl_days is not None else current_app.config["INVITE_TTL_DAYS"]
    with write_transaction() as session:
        dealer = session.execute(select(Dealer).where(Dealer.code == dealer_code)).scalar_one_or_none()
        if dealer is None:
            raise NotFound(f"经销商 {dealer_code} 不存在", "dealer_not_found")
        invite = InviteCode(
            code="".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH)),
            dealer_id=dealer.id,
            role=role,
            expires_at=utcnow() + timedelta(days=ttl),
        )
        session.add(invite)
    return invite


def describe_user(user):
    """What the mini-program shows as "me": user, dealer (tier, region as written) and credit."""
    dealer = user.dealer
    return {
        "user": {"id": user.id, "name": user.name, "role": user.role},
        "dealer": {
            "code": dealer.code,
            "name": dealer.name,
            "status": dealer.status,
            "tier": {"code": dealer.tier.code, "name": dealer.tier.name},
            # "广东省广州市", or "上海市" rather than GB/T's "市辖区"
            "region": {"code": dealer.region_code, "name": "".join(region_path(dealer.region_code))},
        },
        "credit": credit_summary(dealer.id),
    }


# --- access -----------------------------------------------------------------

SUSPENDED_MESSAGE = "贵司账号已被暂停订货，请联系业务员"


@functools.cache
def standing_columns():
    """(columns, FROM clause) that judge a user's standing; the statement binds :user_id
    (`users.id = :user_id`) itself. `standing_from_row` judges the row."""
    users, dealers, tiers = DealerUser.__table__, Dealer.__table__, Tier.__table__
    columns = (
        users.c.role, users.c.active, dealers.c.status, dealers.c.code, dealers.c.tier_id,
        dealers.c.region_code, tiers.c.code.label("tier_code"),
    )
    source = users.join(dealers, dealers.c.id == users.c.dealer_id).join(tiers, tiers.c.id == dealers.c.tier_id)
    return columns, source


@functools.cache
def _standing_statement():
    columns, source = standing_columns()
    return select(*columns).select_from(source).where(DealerUser.__table__.c.id == bindparam("user_id"))


@dataclass(frozen=True)
class Standing:
    """A user's dealer as it is now: its pricing facts and whether it may order."""

    buyer: Buyer
    dealer_status: str

    def require_dealer_active(self):
        if self.dealer_status != "active":
            raise DomainError("dealer_suspended", SUSPENDED_MESSAGE, 403)


def check_may_act(session, user):
    """Inside a write transaction: the user (still) may change things for their dealer.

    The one check every write makes. It reads the user's role and the dealer's status,
    tier and region fresh, so a cached caller never outlives a demotion, a suspension or
    a move to another tier or region. Returns that fresh `Standing`.
    """
    row = session.connection().execute(_standing_statement(), {"user_id": user.id}).first()
    return standing_from_row(row, user)


def standing_from_row(row, user):
    """Judge a row read with `standing_columns()` (None: no such user): the rules of
    `check_may_act`, for a write that reads the standing in a statement of its own."""
    if row is None or not row.active:
        raise DomainError("unauthorized", "账号已停用，请重新登录", 401)
    if row.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能下单或修改购物车", 403)
    buyer = Buyer(user.dealer_id, row.code, row.tier_id, row.tier_code, row.region_code)
    return Standing(buyer, row.status)


def lock_dealer(session, dealer_id):
    """Serialise changes to one dealer's own lists (addresses, carts) behind its row lock."""
    session.connection().execute(
        select(Dealer.__table__.c.id).where(Dealer.__table__.c.id == dealer_id).with_for_update()
    )


# --- addresses ------------------------------------------------------------------

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


def region_path(region_code):
    """`440305` -> ['广东省', '深圳市', '南山区'] (what exists of it)."""
    codes = _region_codes(region_code)
    rows = db.session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all()
    names = dict(rows)
    return readable_region_names([names.get(c) for c in codes])


# --- which dealers a staff member may see ------------------------------------------------

def scope_to_staff(query, staff):
    """Limit a query that involves `Dealer` to the dealers `staff` may see: a sales rep only
    the dealers assigned to them, other roles every dealer (callers check the role may act)."""
    if staff.role == "sales":
        return query.where(Dealer.rep_id == staff.id)
    return query


# --- console: the dealer list -------------------------------------------------------------

DEALER_LIST_PAGE_SIZE = 50


def list_dealers_for_staff(*, staff, q=None, tier=None, region=None, rep_id=None, status=None, page=1):
    """One page of dealers with tier, region, rep and credit, filtered: (rows, total).

    Reps see only their own dealers; admins and finance see all. `q` matches code or name,
    `region` a province or city code (a province includes its cities).
    """
    from app.funds.models import CreditAccount
    from app.staff.models import Staff

    if not staff.active or staff.role not in ("admin", "sales", "finance"):
        raise DomainError("forbidden", "你没有查看经销商的权限", 403)
    if status is not None and status not in DEALER_STATUSES:
        raise DomainError("invalid_filter", "状态只能是“正常”或“暂停”", 400)
    where = []
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Dealer.code.ilike(like, escape="\\"), Dealer.name.ilike(like, escape="\\")))
    if tier:
        where.append(Tier.code == tier)
    if region:
        where.append(or_(Dealer.region_code == region, Region.parent_code == region))
    if rep_id is not None:
        where.append(Dealer.rep_id == rep_id)
    if status:
        where.append(Dealer.status == status)
    base = scope_to_staff(
        select(Dealer, Tier.name.label("tier_name"), Region.name.label("region_name"), Staff.name.label("rep_name"),
               CreditAccount.credit_limit_fen, CreditAccount.receivable_fen, CreditAccount.held_fen)
        .join(Tier, Tier.id == Dealer.tier_id).join(Region, Region.code == Dealer.region_code)
        .outerjoin(Staff, Staff.id == Dealer.rep_id).outerjoin(CreditAccount, CreditAccount.dealer_id == Dealer.id)
        .where(*where),
        staff,
    )
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.session.execute(
        base.order_by(Dealer.code).limit(DEALER_LIST_PAGE_SIZE).offset((page - 1) * DEALER_LIST_PAGE_SIZE)
    ).all()
    return rows, total
