"""Who may act for a dealer, and which dealers a staff member may see.

Every dealer write checks the user's standing fresh in its transaction (`check_may_act`);
staff queries are scoped to the dealers the staff member may see (`scope_to_staff`).
"""
import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from app.dealers.models import ORDERING_ROLES, Dealer, DealerUser, Tier
from app.kernel.errors import DomainError
from app.kernel.permissions import scope_to_rep
from app.pricing.service import Buyer

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


# --- which dealers a staff member may see ------------------------------------------------

def scope_to_staff(query, staff):
    """Limit a query that involves `Dealer` to the dealers `staff` may see: a sales rep only
    the dealers assigned to them, other roles every dealer (callers check the role may act)."""
    return scope_to_rep(query, staff, Dealer.rep_id)

