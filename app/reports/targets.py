"""Monthly sales targets (`SalesTarget`) and the dashboard's attainment against them.

A target is one dealer's ordering target for one China business month, in fen; staff with
`reports.targets` set, change and remove them (audited). A rep's target is the sum of the
targets of the dealers assigned to them now; it is not stored.

Attainment = ordered ÷ target, in basis points, half up. "Ordered" is the dashboard's counting
rule: the `total_fen` of the counted orders (not cancelled, not rejected) placed in the month.
An ordering system's brand sets its dealers' 订货任务 on what they order; shipments and payments
follow from the same orders. For a rep, ordered is every counted order of their dealers in the
month (a dealer without a target still adds to its rep's figure); for a dealer, its own.
Amounts and attainment are for the roles with `reports.amounts`; a rep sees their own dealers.
"""
from sqlalchemy import func, select

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.access import scope_to_staff
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import utcnow
from app.kernel.errors import NotFound
from app.kernel.money import format_yuan
from app.kernel.permissions import require
from app.orders.models import Order
from app.reports.models import MAX_TARGET_FEN, SalesTarget
from app.reports.months import month_text, rate_text, ratio_bp, window
from app.reports.service import EXCLUDED_STATUSES, require_viewer
from app.staff.models import Staff

ATTAINMENT_RULE = (
    "达成率 = 本月订货金额 ÷ 本月目标，订货金额按下单时间计入、不含已取消和已驳回的订单（与本页其他金额口径一致）。"
    "业务员的目标是其名下经销商（按当前分配）目标之和，订货金额是其名下全部经销商的订货金额。"
)
PAGE_LIMIT = 50
NO_REP = "未分配业务员"


def check_amount_fen(amount_fen, field="amount"):
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise inputs.invalid(field, "目标金额必须大于 0 元")
    if amount_fen > MAX_TARGET_FEN:
        raise inputs.invalid(field, f"目标金额不能超过 {format_yuan(MAX_TARGET_FEN)}")
    return amount_fen


def set_sales_target(*, staff, dealer_code, month, amount_fen, session=None):
    """Set (create or replace) `dealer_code`'s target for `month` (a first day). 403 without
    `reports.targets`; 404 for an unknown dealer; 422 for an amount not above 0. Audited as
    `sales_target.set` with the amount before and after; returns the row."""
    require(staff, "reports.targets")
    month = inputs.month(month, field="month", label="月份")
    amount_fen = check_amount_fen(amount_fen)
    if session is not None:
        return _set(session, staff, dealer_code, month, amount_fen)
    with write_transaction() as session:
        return _set(session, staff, dealer_code, month, amount_fen)


def _dealer(session, code):
    dealer = session.execute(select(Dealer).where(Dealer.code == (code or "").strip())).scalar_one_or_none()
    if dealer is None:
        raise NotFound(f"经销商编码“{(code or '').strip()[:32]}”不存在")
    return dealer


def _set(session, staff, dealer_code, month, amount_fen):
    dealer = _dealer(session, dealer_code)
    row = session.execute(select(SalesTarget).where(SalesTarget.dealer_id == dealer.id, SalesTarget.month == month)
                          .with_for_update()).scalar_one_or_none()
    before = row.amount_fen if row is not None else None
    if row is None:
        row = SalesTarget(dealer_id=dealer.id, month=month, amount_fen=amount_fen)
        session.add(row)
    else:
        row.amount_fen, row.updated_at = amount_fen, utcnow()
    session.flush()
    if before != amount_fen:
        audit.record(session, actor=staff, action="sales_target.set", entity_type="dealer", entity_id=dealer.id,
                     label=f"{dealer.code} {dealer.name} {month_text(month)} 销售目标"[:128],
                     before={"amount_fen": before}, after={"amount_fen": amount_fen})
    return row


def remove_sales_target(*, staff, dealer_code, month):
    """Remove `dealer_code`'s target for `month`; 404 when it has none. Audited."""
    require(staff, "reports.targets")
    month = inputs.month(month, field="month", label="月份")
    with write_transaction() as session:
        dealer = _dealer(session, dealer_code)
        row = session.execute(select(SalesTarget).where(SalesTarget.dealer_id == dealer.id,
                                                        SalesTarget.month == month)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"经销商 {dealer.code} 在 {month_text(month)} 没有销售目标")
        audit.record(session, actor=staff, action="sales_target.remove", entity_type="dealer", entity_id=dealer.id,
                     label=f"{dealer.code} {dealer.name} {month_text(month)} 销售目标"[:128],
                     before={"amount_fen": row.amount_fen}, after=None)
        session.delete(row)


def list_targets(*, staff, month):
    """Every dealer's target for `month` (code order), for the targets page and its export."""
    require(staff, "reports.targets")
    rows = db.session.execute(
        select(Dealer.code, Dealer.name, SalesTarget.amount_fen)
        .join(SalesTarget, SalesTarget.dealer_id == Dealer.id)
        .where(SalesTarget.month == month).order_by(Dealer.code)
    ).all()
    return [{"code": r.code, "name": r.name, "amount_fen": int(r.amount_fen)} for r in rows]


# --- attainment -------------------------------------------------------------------------

def _require_amounts(staff):
    require_viewer(staff)
    require(staff, "reports.amounts", "你的角色无权查看目标达成（含金额）")


def _ordered_by_dealer(month):
    start, end = window(month)
    return (
        select(Order.dealer_id, func.sum(Order.total_fen).label("ordered_fen"))
        .where(Order.created_at >= start, Order.created_at < end, Order.status.not_in(EXCLUDED_STATUSES))
        .group_by(Order.dealer_id).subquery()
    )


def _item(key, label, target_fen, ordered_fen, **extra):
    bp = ratio_bp(ordered_fen, target_fen)
    return {"key": key, "label": label, "target_fen": target_fen, "ordered_fen": ordered_fen,
            "attainment_bp": bp, "attainment_text": rate_text(bp), **extra}


def dealer_attainment(*, staff, month, limit=PAGE_LIMIT):
    """The dealers with a target in `month`: target, ordered, attainment; furthest behind first,
    at most `limit` (None: all, for the export). Returns {"total", "items", ...}."""
    _require_amounts(staff)
    ordered = _ordered_by_dealer(month)
    ordered_fen = func.coalesce(ordered.c.ordered_fen, 0)
    base = scope_to_staff(
        select(Dealer.code, Dealer.name, Staff.name.label("rep_name"), SalesTarget.amount_fen.label("target_fen"),
               ordered_fen.label("ordered_fen"))
        .select_from(SalesTarget).join(Dealer, Dealer.id == SalesTarget.dealer_id)
        .outerjoin(ordered, ordered.c.dealer_id == Dealer.id)
        .outerjoin(Staff, Staff.id == Dealer.rep_id)
        .where(SalesTarget.month == month),
        staff,
    )
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    query = base.order_by((ordered_fen * 10000) // SalesTarget.amount_fen, Dealer.code)
    if limit is not None:
        query = query.limit(limit)
    items = [_item(r.code, r.name, int(r.target_fen), int(r.ordered_fen), rep_name=r.rep_name or NO_REP)
             for r in db.session.execute(query).all()]
    return {"month": month_text(month), "metric": "attainment_bp", "total": total, "items": items}


def rep_attainment(*, staff, month):
    """Per rep (and 未分配业务员): the sum of their dealers' targets, what all their dealers
    ordered, attainment; reps with neither are left out. Highest attainment first."""
    _require_amounts(staff)
    targets = scope_to_staff(
        select(Dealer.rep_id, func.sum(SalesTarget.amount_fen))
        .select_from(SalesTarget).join(Dealer, Dealer.id == SalesTarget.dealer_id)
        .where(SalesTarget.month == month).group_by(Dealer.rep_id),
        staff,
    )
    start, end = window(month)
    orders = scope_to_staff(
        select(Dealer.rep_id, func.sum(Order.total_fen))
        .select_from(Order).join(Dealer, Dealer.id == Order.dealer_id)
        .where(Order.created_at >= start, Order.created_at < end, Order.status.not_in(EXCLUDED_STATUSES))
        .group_by(Dealer.rep_id),
        staff,
    )
    target_by = {rep_id: int(fen) for rep_id, fen in db.session.execute(targets).all()}
    ordered_by = {rep_id: int(fen) for rep_id, fen in db.session.execute(orders).all()}
    rep_ids = sorted({*target_by, *ordered_by} - {None})
    names = dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(rep_ids))).all()) if rep_ids else {}
    items = [_item(str(rep_id) if rep_id else "none", names.get(rep_id, NO_REP) if rep_id else NO_REP,
                   target_by.get(rep_id, 0), ordered_by.get(rep_id, 0))
             for rep_id in [*rep_ids, *([None] if None in target_by or None in ordered_by else [])]]
    items.sort(key=lambda i: (i["attainment_bp"] is None, -(i["attainment_bp"] or 0), i["label"]))
    return {"month": month_text(month), "metric": "attainment_bp", "items": items}

