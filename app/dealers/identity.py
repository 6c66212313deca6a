"""Who a mini-program caller is: login tokens, the bound dealer user, binding by invite code,
issuing invite codes, and what the mini-program shows as "me"."""
import functools
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.cache import app_cache
from app.database import write_transaction
from app.dealers.access import scope_to_staff
from app.dealers.addresses import region_text
from app.dealers.models import USER_ROLES, Dealer, DealerUser, InviteCode, Region, Tier
from app.extensions import db
from app.funds.service import credit_summary
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require

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

def login_with_code(*, js_code, gateway, admit=None):
    """Exchange a `wx.login` code for our token. Raises 401 for a bad or reused code.
    `admit(openid)`, when given, is called once WeChat has named the user and before a token
    is issued; whatever it raises refuses the login (the shell's per-user rate limit)."""
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
    if admit is not None:
        admit(openid)
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
            "region": {"code": dealer.region_code, "name": region_text(dealer.region_code)},
        },
        "credit": credit_summary(dealer.id),
    }

