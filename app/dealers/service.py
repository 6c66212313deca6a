"""Dealers, their mini-program users, invite codes and addresses.

Every dealer-owned row is loaded through a helper that scopes by the caller's dealer,
so a foreign id is indistinguishable from a missing one (404).
"""
import contextlib
import functools
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.audit import service as audit
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
from app.extensions import db
from app.funds import service as funds
from app.funds.service import credit_summary
from app.kernel.clock import BUSINESS_TZ, business_today, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import MAX_INPUT_FEN, format_yuan, parse_yuan
from app.kernel.permissions import can, require, scope_to_rep, sees_only_own_dealers
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


def create_invite(*, dealer_code, role="owner", ttl_days=None, staff=None):
    """A fresh single-use invite code for a dealer. Raises 404 for an unknown dealer.

    With `staff` (the console): only admins and sales reps may issue codes, a rep only for
    their own dealers (another rep's dealer answers 404), and the code is audited
    (`dealer.invite`; the log keeps the role and expiry, not the code itself).
    """
    if role not in USER_ROLES:
        raise DomainError("invalid_role", f"角色必须是 {'/'.join(USER_ROLES)} 之一", 422)
    if staff is not None:
        require(staff, "dealers.invite", "你没有生成邀请码的权限")
    ttl = ttl_days if ttl_days is not None else current_app.config["INVITE_TTL_DAYS"]
    with write_transaction() as session:
        query = select(Dealer).where(Dealer.code == dealer_code)
        dealer = session.execute(scope_to_staff(query, staff) if staff else query).scalar_one_or_none()
        if dealer is None:
            raise NotFound(f"经销商 {dealer_code} 不存在", "dealer_not_found")
        invite = InviteCode(
            code="".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH)),
            dealer_id=dealer.id,
            role=role,
            expires_at=utcnow() + timedelta(days=ttl),
        )
        session.add(invite)
        if staff is not None:
            audit.record(
                session, actor=staff, action="dealer.invite", entity_type="dealer", entity_id=dealer.code,
                label=dealer.name, after={"invite_role": role, "expires_at": invite.expires_at},
            )
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
    return scope_to_rep(query, staff, Dealer.rep_id)


# --- console: the dealer list -------------------------------------------------------------

DEALER_LIST_PAGE_SIZE = 50


def list_dealers_for_staff(*, staff, q=None, tier=None, region=None, rep_id=None, status=None, page=1):
    """One page of dealers with tier, region, rep and credit, filtered: (rows, total), each row
    (dealer, tier name, region name, rep name, credit limit, exposure, available) in fen.

    Reps see only their own dealers; admins and finance see all. `q` matches code or name,
    `region` a province or city code (a province includes its cities).
    """
    from app.funds.models import CreditAccount, exposure_fen
    from app.staff.models import Staff

    require(staff, "dealers.view", "你没有查看经销商的权限")
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
    rows = []
    for dealer, tier_name, region_name, rep_name, limit_fen, receivable_fen, held_fen in db.session.execute(
        base.order_by(Dealer.code).limit(DEALER_LIST_PAGE_SIZE).offset((page - 1) * DEALER_LIST_PAGE_SIZE)
    ):
        limit_fen, used_fen = limit_fen or 0, exposure_fen(receivable_fen or 0, held_fen or 0)
        rows.append((dealer, tier_name, region_name, rep_name, limit_fen, used_fen, max(limit_fen - used_fen, 0)))
    return rows, total


# --- console and importer: managing dealers ------------------------------------------------
#
# `create_dealer`, `update_dealer`, `set_credit_limit`, `suspend_dealer`, `reactivate_dealer`
# serve the console's dealer pages and the Excel importer alike: keyword arguments, the acting
# staff member explicit, every rule checked inside (a bad value raises 422 `validation_error`
# whose message names the field in Chinese and whose details are {"fields": {field: [msg]}}),
# and every change audited in the transaction that makes it. Each owns its transaction; pass
# `session=` (an open `write_transaction()`) to make it part of a larger one — an import writes
# all its rows in one, so a bad row leaves nothing behind. Validation happens before any write.


DEALER_FIELDS = (
    "code", "name", "tier", "region_code", "rep", "contact_name", "contact_phone", "payment_terms_days",
    "contract_start", "contract_end", "annual_target_fen", "credit_limit_fen",
)
# The permission that lets one change each field of an existing dealer (a rep only on their
# own dealers). The rep keeps the dealer's contact up to date; finance owns payment terms and
# credit; the code never changes (orders, audit entries and spreadsheets refer to it).
FIELD_PERMISSIONS = {
    **dict.fromkeys(("name", "tier", "region_code", "rep", "contract_start", "contract_end", "annual_target_fen"),
                    "dealers.profile"),
    "contact_name": "dealers.contact", "contact_phone": "dealers.contact",
    "payment_terms_days": "dealers.credit", "credit_limit_fen": "dealers.credit",
}


def editable_fields(staff):
    """The fields of an existing dealer `staff` may change, in form order."""
    return tuple(field for field in DEALER_FIELDS[1:] if can(staff, FIELD_PERMISSIONS[field]))
FIELD_LABELS = {
    "code": "经销商编码", "name": "经销商名称", "tier": "等级", "region_code": "所在地区", "rep": "业务员",
    "contact_name": "联系人", "contact_phone": "联系电话", "payment_terms_days": "账期（天）",
    "contract_start": "合同开始日期", "contract_end": "合同结束日期", "annual_target_fen": "年度目标",
    "credit_limit_fen": "信用额度", "reason": "原因",
    # audit-only keys, for the dealer page's change history
    "status": "状态", "invite_role": "邀请角色", "expires_at": "有效期至",
}
MAX_PAYMENT_TERMS_DAYS = 365
MAX_REASON_LENGTH = 200
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
_PHONE = re.compile(r"1[0-9]{10}|0[0-9]{2,3}-?[0-9]{7,8}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TEXT_LIMITS = {"name": 128, "contact_name": 64}


def dealer_validation_error(fields):
    """422 `validation_error` for {field: [message]}: the message lists every field in Chinese."""
    message = "；".join(f"{FIELD_LABELS.get(field, field)}：{'，'.join(messages)}" for field, messages in fields.items())
    return DomainError("validation_error", message, 422, {"fields": fields})


@contextlib.contextmanager
def _transaction(session):
    if session is not None:
        yield session
    else:
        with write_transaction() as own:
            yield own


# --- reading what people typed ---------------------------------------------------------------

def _text_of(value):
    """A cell or form value as stripped text; None when blank. Numbers read as typed (12 -> "12")."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("应为文字")
    return value.strip() or None


def _parse_int(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = unicodedata.normalize("NFKC", _text_of(value) or "")
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise ValueError("请输入整数")
    return int(text)


def _parse_date(value):
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", _text_of(value) or "")
    match = re.fullmatch(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})", text)
    if match is None:
        raise ValueError("日期格式应为 2026-01-31")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ValueError("不是有效的日期") from None


def dealer_fields_from_text(values):
    """Keyword arguments for `create_dealer` / `update_dealer` from what a person typed into the
    console's form or a spreadsheet row (strings, or the numbers and dates a cell holds).

    Only the keys present come back, so a partial row updates only its columns. Blank means
    empty (None; 0 days for `payment_terms_days`). Amounts are read in yuan — `annual_target`
    and `credit_limit`, e.g. "12,345.67" or "50万" — and come back as integer
    `annual_target_fen` / `credit_limit_fen`. Raises 422 naming every unreadable field.
    """
    out, errors = _read_text(values)
    if errors:
        raise dealer_validation_error(errors)
    return out


def _read_text(values):
    out, errors = {}, {}
    for key, raw in values.items():
        try:
            blank = raw is None or (isinstance(raw, str) and not raw.strip())
            if key in ("annual_target", "credit_limit"):
                out[key + "_fen"] = None if blank else parse_yuan(raw)
            elif key == "payment_terms_days":
                out[key] = 0 if blank else _parse_int(raw)
            elif key in ("contract_start", "contract_end"):
                out[key] = None if blank else _parse_date(raw)
            elif key in DEALER_FIELDS:
                out[key] = _text_of(raw)
            else:
                raise TypeError(f"unknown dealer field {key!r}")
        except ValueError as exc:
            field = key + "_fen" if key in ("annual_target", "credit_limit") else key
            errors.setdefault(field, []).append(str(exc))
    return out, errors


def _all_problems(session, fields, unreadable, dealer=None):
    """422 naming the unreadable fields and every problem the readable ones have, so a
    form or a spreadsheet row is corrected in one go."""
    try:
        _checked_values(session, fields, dealer)
    except DomainError as exc:
        if exc.code != "validation_error":
            raise
        unreadable = {**exc.details["fields"], **unreadable}
    ordered = sorted(unreadable, key=lambda f: DEALER_FIELDS.index(f) if f in DEALER_FIELDS else len(DEALER_FIELDS))
    return dealer_validation_error({field: unreadable[field] for field in ordered})


def create_dealer_from_text(*, staff, values, reason=None, session=None):
    """`create_dealer` from a console form or a spreadsheet row, as `dealer_fields_from_text`
    reads it; an unreadable value and every other problem of the row are reported together."""
    require(staff, "dealers.create", "只有管理员可以新建经销商")
    fields, unreadable = _read_text(values)
    fields = {**dict.fromkeys(("code", "name", "tier", "region_code")), **fields}
    if unreadable:
        raise _all_problems(session or db.session, fields, unreadable)
    return create_dealer(staff=staff, reason=reason, session=session, **fields)


def update_dealer_from_text(*, staff, code, values, reason=None, session=None):
    """`update_dealer` from a console form or a spreadsheet row (only the columns given)."""
    fields, unreadable = _read_text(values)
    if unreadable:
        require(staff, "dealers.edit", "你没有修改经销商的权限")
        dealer = get_dealer_for_staff(staff=staff, code=code)
        if set(unreadable) - set(permissions_for(staff, dealer)["edit_fields"]):
            raise DomainError("forbidden", "你的角色不能修改这些资料", 403)
        raise _all_problems(session or db.session, fields, unreadable, dealer)
    return update_dealer(staff=staff, code=code, reason=reason, session=session, **fields)


# --- checking the values -------------------------------------------------------------------------

def _check_text(field, value, errors, *, required=False):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.setdefault(field, []).append("不能为空")
        return None
    if not isinstance(value, str):
        errors.setdefault(field, []).append("应为文字")
        return None
    value = value.strip()
    if _CONTROL.search(value):
        errors.setdefault(field, []).append("不能包含控制字符")
    limit = _TEXT_LIMITS.get(field)
    if limit and len(value) > limit:
        errors.setdefault(field, []).append(f"不能超过 {limit} 个字")
    return value


def _check_amount(field, value, errors):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault(field, []).append("金额应为整数（分）")
    elif value < 0:
        errors.setdefault(field, []).append("不能为负数")
    elif value > MAX_INPUT_FEN:
        errors.setdefault(field, []).append(f"不能超过 {format_yuan(MAX_INPUT_FEN)}")
    else:
        return value
    return None


def _find_tier(session, value):
    return session.execute(
        select(Tier).where(or_(Tier.code == value, Tier.name == value)).order_by(Tier.code != value).limit(1)
    ).scalar_one_or_none()


def _find_rep(session, value):
    """An active sales rep by username, else by name when exactly one rep has it."""
    from app.staff.models import Staff

    reps = select(Staff).where(Staff.role == "sales", Staff.active.is_(True))
    rep = session.execute(reps.where(Staff.username == value)).scalar_one_or_none()
    if rep is None:
        named = session.execute(reps.where(Staff.name == value).limit(2)).scalars().all()
        rep = named[0] if len(named) == 1 else None
    return rep


def _checked_values(session, fields, dealer=None):
    """Column values for a new dealer (`dealer` None) or the changes to one, from typed fields.
    Collects every problem, then raises 422 naming them all; reads only, never writes."""
    errors, values = {}, {}
    creating = dealer is None

    def bad(field, message):
        errors.setdefault(field, []).append(message)

    if "code" in fields:
        code = _check_text("code", fields["code"], errors, required=True)
        if code is not None:
            code = unicodedata.normalize("NFKC", code).upper()
            if not _CODE.fullmatch(code):
                bad("code", "只能由字母、数字、- 和 _ 组成，最长 32 位，例如 D021")
            else:
                taken = session.execute(select(Dealer.name).where(Dealer.code == code)).scalar_one_or_none()
                if taken is not None and (creating or code != dealer.code):
                    bad("code", f"{code} 已被经销商“{taken}”使用")
                values["code"] = code
    if "name" in fields:
        name = _check_text("name", fields["name"], errors, required=True)
        if name is not None:
            query = select(Dealer.code).where(Dealer.name == name)
            if not creating:
                query = query.where(Dealer.id != dealer.id)
            other = session.execute(query.limit(1)).scalar_one_or_none()
            if other is not None:
                bad("name", f"与经销商 {other} 重名")
            values["name"] = name
    if "tier" in fields:
        tier = _check_text("tier", fields["tier"], errors, required=True)
        if tier is not None:
            found = _find_tier(session, tier)
            if found is None:
                bad("tier", f"等级“{tier}”不存在")
            else:
                values["tier_id"] = found.id
    if "region_code" in fields:
        region = _check_text("region_code", fields["region_code"], errors, required=True)
        if region is not None:
            if not re.fullmatch(r"[0-9]{6}", region):
                bad("region_code", "地区编码应为 6 位数字（GB/T 2260）")
            elif session.get(Region, region) is None:
                bad("region_code", f"地区编码 {region} 不存在")
            else:
                values["region_code"] = region
    if "rep" in fields:
        rep = _check_text("rep", fields["rep"], errors)
        if rep is None:
            values["rep_id"] = None
        elif not creating and dealer.rep is not None and rep in (dealer.rep.username, dealer.rep.name):
            values["rep_id"] = dealer.rep_id  # kept as is, even if the rep has left since
        else:
            found = _find_rep(session, rep)
            if found is None:
                bad("rep", f"业务员“{rep}”不存在或已停用（填写业务员的用户名）")
            else:
                values["rep_id"] = found.id
    if "contact_name" in fields:
        values["contact_name"] = _check_text("contact_name", fields["contact_name"], errors)
    if "contact_phone" in fields:
        phone = _check_text("contact_phone", fields["contact_phone"], errors)
        if phone is not None:
            phone = unicodedata.normalize("NFKC", phone).replace(" ", "")
            if not _PHONE.fullmatch(phone):
                bad("contact_phone", "请输入 11 位手机号或带区号的座机号")
        values["contact_phone"] = phone
    if "payment_terms_days" in fields:
        days = fields["payment_terms_days"]
        days = 0 if days is None else days
        if isinstance(days, bool) or not isinstance(days, int):
            bad("payment_terms_days", "应为整数天数")
        elif not 0 <= days <= MAX_PAYMENT_TERMS_DAYS:
            bad("payment_terms_days", f"应在 0 到 {MAX_PAYMENT_TERMS_DAYS} 天之间（0 表示款到发货）")
        else:
            values["payment_terms_days"] = days
    for field in ("contract_start", "contract_end"):
        if field in fields:
            day = fields[field]
            if isinstance(day, datetime):
                day = day.date()
            if day is not None and not isinstance(day, date):
                bad(field, "应为日期")
            else:
                values[field] = day
    start = values.get("contract_start", None if creating else dealer.contract_start)
    end = values.get("contract_end", None if creating else dealer.contract_end)
    if start and end and end < start:
        bad("contract_end", "不能早于合同开始日期")
    if "annual_target_fen" in fields:
        values["annual_target_fen"] = _check_amount("annual_target_fen", fields["annual_target_fen"], errors)
    if "credit_limit_fen" in fields:
        limit = fields["credit_limit_fen"]
        if limit is None and not creating:
            bad("credit_limit_fen", "不能为空（没有额度请填 0）")
        values["credit_limit_fen"] = _check_amount("credit_limit_fen", limit, errors)
    if creating:
        for field in ("code", "name", "tier", "region_code"):
            if field not in fields:
                bad(field, "不能为空")
    if errors:
        raise dealer_validation_error(errors)
    return values


def _snapshot(session, dealer):
    """A dealer's editable fields as the audit log keeps them (codes, usernames, ISO dates, fen)."""
    from app.staff.models import Staff

    tier = session.get(Tier, dealer.tier_id)
    rep = session.get(Staff, dealer.rep_id) if dealer.rep_id else None
    return {
        "code": dealer.code, "name": dealer.name, "tier": tier.code if tier else None,
        "region_code": dealer.region_code, "rep": rep.username if rep else None,
        "contact_name": dealer.contact_name, "contact_phone": dealer.contact_phone,
        "payment_terms_days": dealer.payment_terms_days, "contract_start": dealer.contract_start,
        "contract_end": dealer.contract_end, "annual_target_fen": dealer.annual_target_fen,
    }


def _clean_reason(reason, *, required=False):
    reason = (reason or "").strip() if isinstance(reason, str) or reason is None else None
    if reason is None:
        raise dealer_validation_error({"reason": ["应为文字"]})
    if required and not reason:
        raise dealer_validation_error({"reason": ["请填写原因"]})
    if len(reason) > MAX_REASON_LENGTH or _CONTROL.search(reason):
        raise dealer_validation_error({"reason": [f"不能超过 {MAX_REASON_LENGTH} 个字，且不能包含控制字符"]})
    return reason or None


def _lock_dealer_for_staff(session, staff, code):
    """The dealer, row-locked, if `staff` may see it; 404 otherwise (a rep's view of another
    rep's dealer is the same as a missing one). FOR NO KEY UPDATE: orders being inserted for
    the dealer (their foreign key takes KEY SHARE) are not blocked, so no deadlock with a
    submit that holds the credit account."""
    query = scope_to_staff(select(Dealer).where(Dealer.code == code), staff)
    query = query.with_for_update(of=Dealer, key_share=True)
    dealer = session.execute(query).scalar_one_or_none() if isinstance(code, str) else None
    if dealer is None:
        raise NotFound("经销商不存在，或不是你负责的经销商", "dealer_not_found")
    return dealer


def _apply_credit_limit(session, staff, dealer, limit_fen, reason):
    previous = funds.set_limit(session, dealer_id=dealer.id, limit_fen=limit_fen, note=reason)
    if previous != limit_fen:
        audit.record(
            session, actor=staff, action="credit.limit", entity_type="credit", entity_id=dealer.code,
            label=dealer.name, before={"credit_limit_fen": previous}, after={"credit_limit_fen": limit_fen},
            reason=reason,
        )
    return previous


# --- the actions ---------------------------------------------------------------------------------

def create_dealer(*, staff, code, name, tier, region_code, rep=None, contact_name=None, contact_phone=None,
                  payment_terms_days=0, contract_start=None, contract_end=None, annual_target_fen=None,
                  credit_limit_fen=None, reason=None, session=None):
    """A new active dealer with its credit account (admins only; 403 otherwise).

    `tier` is a tier code or name, `rep` a sales rep's username (or their name when unique),
    `region_code` a GB/T 2260 code from the regions table; amounts are integer fen. Audited as
    `dealer.create`, plus `credit.limit` (with a `limit_set` credit entry) when a limit is given.
    Raises 422 `validation_error` naming every bad field (a taken code or name included).
    """
    require(staff, "dealers.create", "只有管理员可以新建经销商")
    fields = {
        "code": code, "name": name, "tier": tier, "region_code": region_code, "rep": rep,
        "contact_name": contact_name, "contact_phone": contact_phone, "payment_terms_days": payment_terms_days,
        "contract_start": contract_start, "contract_end": contract_end, "annual_target_fen": annual_target_fen,
        "credit_limit_fen": credit_limit_fen,
    }
    reason = _clean_reason(reason)
    with _transaction(session) as tx:
        values = _checked_values(tx, fields)
        limit_fen = values.pop("credit_limit_fen", None)
        dealer = Dealer(status="active", **values)
        tx.add(dealer)
        try:
            tx.flush()
        except IntegrityError:
            # Another clerk created the same code a moment ago.
            raise dealer_validation_error({"code": [f"{values['code']} 已被使用"]}) from None
        funds.lock_account(tx, dealer.id)
        audit.record(
            tx, actor=staff, action="dealer.create", entity_type="dealer", entity_id=dealer.code,
            label=dealer.name, after={**_snapshot(tx, dealer), "status": "active"}, reason=reason,
        )
        if limit_fen:
            _apply_credit_limit(tx, staff, dealer, limit_fen, reason or "新建经销商")
    return dealer


def update_dealer(*, staff, code, reason=None, session=None, **changes):
    """Change some of a dealer's fields (any of DEALER_FIELDS but `code`; only the keys given).

    Admins change everything; finance the payment terms and credit limit; a sales rep the
    contact name and phone of their own dealers — changing any other field answers 403, and
    another rep's dealer 404. A credit limit goes through `set_credit_limit`'s rules. Audited as
    `dealer.update` with the before/after of the changed fields only; nothing changed, nothing
    written. Returns the dealer.
    """
    unknown = set(changes) - set(DEALER_FIELDS[1:])
    if unknown:
        raise TypeError(f"update_dealer() got unknown fields {sorted(unknown)}")
    require(staff, "dealers.edit", "你没有修改经销商的权限")
    reason = _clean_reason(reason)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        values = _checked_values(tx, changes, dealer)
        limit_fen = values.pop("credit_limit_fen", None)
        before = _snapshot(tx, dealer)
        current_limit = funds.lock_account(tx, dealer.id).credit_limit_fen if limit_fen is not None else None
        changed_fields = [f for f, v in values.items() if getattr(dealer, f) != v]
        changed_names = {_FIELD_OF_COLUMN.get(f, f) for f in changed_fields}
        if limit_fen is not None and limit_fen != current_limit:
            changed_names.add("credit_limit_fen")
        allowed = editable_fields(staff)
        refused = sorted(changed_names - set(allowed), key=DEALER_FIELDS.index)
        if refused:
            may = "、".join(FIELD_LABELS[f] for f in allowed) or "（无）"
            raise DomainError(
                "forbidden", f"你的角色不能修改{'、'.join(FIELD_LABELS[f] for f in refused)}；可以修改：{may}", 403,
                {"fields": refused},
            )
        for field in changed_fields:
            setattr(dealer, field, values[field])
        tx.flush()
        old, new = audit.changed(before, _snapshot(tx, dealer))
        if new:
            audit.record(
                tx, actor=staff, action="dealer.update", entity_type="dealer", entity_id=dealer.code,
                label=dealer.name, before=old, after=new, reason=reason,
            )
        if "credit_limit_fen" in changed_names:
            _apply_credit_limit(tx, staff, dealer, limit_fen, reason)
    return dealer


_FIELD_OF_COLUMN = {"tier_id": "tier", "rep_id": "rep"}


def set_credit_limit(*, staff, code, limit_fen, reason=None, session=None):
    """Give a dealer a new credit limit (admins and finance; 403 otherwise): writes a
    `limit_set` credit entry and the audit entry `credit.limit`. Returns the previous limit.
    A limit below the dealer's current use is allowed (new credit orders wait for headroom)."""
    require(staff, "dealers.credit", "只有管理员和财务可以调整信用额度")
    reason = _clean_reason(reason)
    errors = {}
    limit_fen = _check_amount("credit_limit_fen", limit_fen, errors)
    if limit_fen is None and not errors:
        errors["credit_limit_fen"] = ["不能为空（没有额度请填 0）"]
    if errors:
        raise dealer_validation_error(errors)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        return _apply_credit_limit(tx, staff, dealer, limit_fen, reason)


def suspend_dealer(*, staff, code, reason, session=None):
    """Stop a dealer ordering (admins and finance): its users still sign in and see their orders,
    but every new order answers 403 `dealer_suspended`. Needs a reason; audited as
    `dealer.suspend`. 409 if already suspended."""
    return _set_status(staff, code, reason, session, to="suspended")


def reactivate_dealer(*, staff, code, reason, session=None):
    """Let a suspended dealer order again (admins and finance); audited as `dealer.reactivate`."""
    return _set_status(staff, code, reason, session, to="active")


def _set_status(staff, code, reason, session, *, to):
    action = "dealer.suspend" if to == "suspended" else "dealer.reactivate"
    verb = "暂停" if to == "suspended" else "恢复"
    require(staff, "dealers.status", f"只有管理员和财务可以{verb}经销商")
    reason = _clean_reason(reason, required=True)
    with _transaction(session) as tx:
        dealer = _lock_dealer_for_staff(tx, staff, code)
        if dealer.status == to:
            state = "暂停" if to == "suspended" else "正常"
            raise DomainError("dealer_status_unchanged", f"经销商 {dealer.code} 已是“{state}”状态", 409)
        previous, dealer.status = dealer.status, to
        tx.flush()
        audit.record(
            tx, actor=staff, action=action, entity_type="dealer", entity_id=dealer.code, label=dealer.name,
            before={"status": previous}, after={"status": to}, reason=reason,
        )
    return dealer


# --- the detail page -------------------------------------------------------------------------------

def permissions_for(staff, dealer=None):
    """What `staff` may do on a dealer's page (the services check the same rules again)."""
    own = dealer is None or not sees_only_own_dealers(staff) or dealer.rep_id == staff.id
    return {
        "edit_fields": editable_fields(staff) if own else (),
        "credit": can(staff, "dealers.credit"),
        "status": can(staff, "dealers.status"),
        "invite": can(staff, "dealers.invite") and own,
        "create": can(staff, "dealers.create"),
    }


RECENT_ORDERS = 20


def get_dealer_for_staff(*, staff, code):
    """The dealer if `staff` may see it (admins and finance every dealer, a rep their own); 404 else."""
    require(staff, "dealers.view", "你没有查看经销商的权限")
    query = scope_to_staff(select(Dealer).where(Dealer.code == code), staff)
    dealer = db.session.execute(query).scalar_one_or_none()
    if dealer is None:
        raise NotFound("经销商不存在，或不是你负责的经销商", "dealer_not_found")
    return dealer


def dealer_detail(*, staff, code):
    """Everything the console's dealer page shows, read for a staff member who may see it:
    profile, credit and terms, users and unused invite codes, addresses, the last orders,
    this year's ordered amount against the annual target, and the dealer's change history."""
    from app.audit.models import AuditEntry
    from app.orders.models import Order
    from app.staff.models import Staff

    dealer = get_dealer_for_staff(staff=staff, code=code)
    today = business_today()
    users = db.session.execute(
        select(DealerUser).where(DealerUser.dealer_id == dealer.id).order_by(DealerUser.active.desc(), DealerUser.id)
    ).scalars().all()
    invites = db.session.execute(
        select(InviteCode).where(InviteCode.dealer_id == dealer.id, InviteCode.used_at.is_(None))
        .order_by(InviteCode.expires_at.desc()).limit(20)
    ).scalars().all()
    orders = db.session.execute(
        select(Order.order_no, Order.status, Order.total_fen, Order.created_at)
        .where(Order.dealer_id == dealer.id).order_by(Order.id.desc()).limit(RECENT_ORDERS)
    ).all()
    year_start = datetime(today.year, 1, 1, tzinfo=BUSINESS_TZ)
    ordered_this_year = db.session.execute(
        select(func.coalesce(func.sum(Order.total_fen), 0)).where(
            Order.dealer_id == dealer.id, Order.created_at >= year_start,
            Order.status.not_in(("cancelled", "rejected")),
        )
    ).scalar_one()
    history, _ = audit.list_entries(entity_id=dealer.code, page_size=20)
    history = [entry for entry in history if entry.entity_type in ("dealer", "credit")]
    suspension = None
    if dealer.status == "suspended":
        suspension = db.session.execute(
            select(AuditEntry).where(AuditEntry.entity_type == "dealer", AuditEntry.entity_id == dealer.code,
                                     AuditEntry.action == "dealer.suspend").order_by(AuditEntry.id.desc()).limit(1)
        ).scalar_one_or_none()
    permissions = permissions_for(staff, dealer)
    return SimpleNamespace(
        dealer=dealer,
        tier=dealer.tier,
        region_path="".join(region_path(dealer.region_code)) or dealer.region_code,
        rep=db.session.get(Staff, dealer.rep_id) if dealer.rep_id else None,
        credit=funds.get_balances(dealer.id),
        users=users,
        invites=invites if permissions["invite"] else [],
        now=utcnow(),
        addresses=list_addresses(dealer_id=dealer.id),
        orders=orders,
        ordered_this_year_fen=ordered_this_year,
        target_percent=(ordered_this_year * 100 // dealer.annual_target_fen) if dealer.annual_target_fen else None,
        contract_state=_contract_state(dealer, today),
        history=history,
        suspension=suspension,
        permissions=permissions,
    )


def _contract_state(dealer, today):
    if dealer.contract_start is None and dealer.contract_end is None:
        return "未登记"
    if dealer.contract_start and today < dealer.contract_start:
        return "未开始"
    if dealer.contract_end and today > dealer.contract_end:
        return "已到期"
    if dealer.contract_end and (dealer.contract_end - today).days <= 30:
        return f"{(dealer.contract_end - today).days} 天后到期"
    return "合同期内"


def dealer_form_options(dealer=None):
    """Choices for the create/edit form: tiers, regions (provinces with their cities), active reps
    (and the dealer's current rep, so saving the form never drops one who has left)."""
    from app.staff.models import Staff

    regions = db.session.execute(select(Region).order_by(Region.code)).scalars().all()
    provinces = [r for r in regions if r.parent_code is None]
    children = {}
    for region in regions:
        if region.parent_code is not None:
            children.setdefault(region.parent_code, []).append(region)
    return {
        "tiers": db.session.execute(select(Tier).order_by(Tier.rank)).scalars().all(),
        "regions": [(province, children.get(province.code, [])) for province in provinces],
        "reps": db.session.execute(
            select(Staff).where(
                Staff.role == "sales", or_(Staff.active.is_(True), Staff.id == (dealer.rep_id if dealer else None))
            ).order_by(Staff.name)
        ).scalars().all(),
    }
