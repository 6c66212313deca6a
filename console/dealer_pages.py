"""Console: what the dealer pages show — one dealer's detail page and the choices of the
create/edit form — read for the staff member through the dealers domain's rules."""
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import func, or_, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.dealers.addresses import list_addresses, region_text
from app.dealers.admin import get_dealer_for_staff, permissions_for
from app.dealers.models import DealerUser, InviteCode, Region, Tier
from app.extensions import db
from app.funds import service as funds
from app.kernel.clock import BUSINESS_TZ, business_today, utcnow
from app.orders.models import Order
from app.staff.models import Staff

RECENT_ORDERS = 20


def dealer_detail(*, staff, code):
    """Everything the console's dealer page shows, read for a staff member who may see it:
    profile, credit and terms, users and unused invite codes, addresses, the last orders,
    this year's ordered amount against the annual target, and the dealer's change history."""
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
        region_path=region_text(dealer.region_code),
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
