"""The dashboard's month figures: growth month on month and year on year, and dealer coverage.

A month is a China business month (`app.kernel.clock`): an order counts in the month of the
China-time day it was placed, by the dashboard's counting rule (`app.reports.service`:
cancelled and rejected orders never count, the amount is the order's `total_fen`).

Growth compares the selected month with the month before and with the same month a year
earlier. While the selected month is still running, the three are compared over the same
days — the 1st to today's day of the month, cut at each month's length ("同期") — so half a
month is never set against a whole one. Growth is in basis points, half up; against a zero base
it has no percentage: "新增" when something was ordered, "—" when neither was.

Coverage is the share of the active dealers (status 正常, as they are now) that placed at least
one counted order in the month, overall, per province and per tier.
"""
from calendar import monthrange
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, func, literal_column, or_, select

from app.dealers.access import scope_to_staff
from app.dealers.models import Dealer, Region, Tier
from app.extensions import db
from app.kernel import inputs
from app.kernel.clock import business_day_start, business_today
from app.kernel.errors import DomainError
from app.kernel.money import percent_text
from app.orders.models import Order
from app.reports.service import EXCLUDED_STATUSES, require_viewer, sees_amounts

GROWTH_RULE = (
    "环比对比上月、同比对比去年同月；所选月份尚未结束时，三个月都只算 1 日至今天对应的日期（同期）。"
    "增长率 =（本期 − 基期）÷ 基期，四舍五入到 0.01%；基期为 0 时不计算百分比：本期有订单记为“新增”，都没有记为“—”。"
)
COVERAGE_RULE = (
    "覆盖率 = 本月下过至少一笔计入订单的经销商 ÷ 正常状态的经销商（按经销商当前状态、地区和等级）。"
)


# --- months -----------------------------------------------------------------------------

def parse_month(value, *, today=None):
    """The month a page or export asks for ("2026-11"), as the date of its first day; the current
    China month when `value` is empty. 400 `invalid_month` for anything else or a month to come."""
    today = today or business_today()
    if value is None or value == "":
        return today.replace(day=1)
    try:
        first = inputs.month(value, field="month", label="月份")
    except DomainError as exc:
        raise DomainError("invalid_month", exc.message, 400, {"month": [exc.message]}) from None
    if first > today:
        raise DomainError("invalid_month", "不能选择还没到的月份", 400, {"month": ["不能晚于本月"]})
    return first


def add_months(first, months):
    index = first.year * 12 + first.month - 1 + months
    return first.replace(year=index // 12, month=index % 12 + 1, day=1)


def month_days(first):
    return monthrange(first.year, first.month)[1]


def month_text(first):
    return f"{first.year}-{first.month:02d}"


def through_day(first, today=None):
    """The last day of `first`'s month that counts: today while the month runs, else its end."""
    today = today or business_today()
    if (first.year, first.month) == (today.year, today.month):
        return today.day
    return month_days(first)


def window(first, days=None):
    """[start, end) in UTC of `first`'s month, or of its first `days` days (cut at its length)."""
    length = month_days(first) if days is None else min(days, month_days(first))
    return business_day_start(first), business_day_start(first + timedelta(days=length))


def counted(staff):
    """Counted orders of the dealers `staff` may see, joined to Dealer (no date filter yet)."""
    query = (select().select_from(Order).join(Dealer, Dealer.id == Order.dealer_id)
             .where(Order.status.not_in(EXCLUDED_STATUSES)))
    return scope_to_staff(query, staff)


def ratio_bp(part, whole):
    """part / whole in basis points, half up; None when `whole` is 0."""
    if not whole:
        return None
    return int((Decimal(part) * 10000 / Decimal(whole)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rate_text(bp):
    return "—" if bp is None else f"{percent_text(bp)}%"


def growth_of(current, base):
    """(basis points or None, text): "+12.5%", "-3%", "0%", "新增" (zero base), "—" (both zero)."""
    if not base:
        return None, ("新增" if current else "—")
    bp = ratio_bp(current - base, base)
    return bp, ("+" if bp > 0 else "") + rate_text(bp)


# --- growth -----------------------------------------------------------------------------

def growth(*, staff, month, today=None):
    """Counted orders and amount of `month` (a first day), the month before and the same month a
    year earlier (over the same days while `month` runs), and the growth of each against them.
    Amounts are None for roles without `reports.amounts` (their growth is the count's only)."""
    require_viewer(staff)
    today = today or business_today()
    days = through_day(month, today)
    to_date = days < month_days(month)
    periods = [("current", "本月", month), ("previous", "上月", add_months(month, -1)),
               ("last_year", "去年同月", add_months(month, -12))]
    bounds = [window(first, days if to_date else None) for _key, _label, first in periods]
    columns = []
    for start, end in bounds:
        inside = and_(Order.created_at >= start, Order.created_at < end)
        columns += [func.coalesce(func.sum(case((inside, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((inside, Order.total_fen), else_=0)), 0)]
    row = db.session.execute(
        counted(staff).with_only_columns(*columns).where(
            or_(*(and_(Order.created_at >= start, Order.created_at < end) for start, end in bounds)))
    ).one()
    amounts = sees_amounts(staff)
    items = []
    for index, (key, label, first) in enumerate(periods):
        length = min(days, month_days(first)) if to_date else month_days(first)
        items.append({
            "key": key, "label": f"{label} {month_text(first)}", "month": month_text(first),
            "from": first.isoformat(), "to": (first + timedelta(days=length - 1)).isoformat(),
            "order_count": int(row[2 * index]), "amount_fen": int(row[2 * index + 1]) if amounts else None,
        })
    current = items[0]

    def against(base):
        count_bp, count_text = growth_of(current["order_count"], base["order_count"])
        out = {"base": base["key"], "count_bp": count_bp, "count_text": count_text,
               "amount_bp": None, "amount_text": None}
        if amounts:
            out["amount_bp"], out["amount_text"] = growth_of(current["amount_fen"], base["amount_fen"])
        return out

    return {"month": month_text(month), "to_date": to_date, "through_day": days,
            "metric": "amount_fen" if amounts else "order_count", "items": items,
            "mom": against(items[1]), "yoy": against(items[2])}


# --- coverage ---------------------------------------------------------------------------

def _province():
    # Constants inline, not bound: PostgreSQL matches the GROUP BY expression to the selected one.
    return func.substr(Dealer.region_code, literal_column("1"), literal_column("2")).op("||")(
        literal_column("'0000'"))


def coverage(*, staff, month, today=None):
    """Active dealers, and of them those with a counted order in `month`, overall, per province
    (largest number of active dealers first) and per tier (by the tier's rank)."""
    require_viewer(staff)
    start, end = window(month)
    ordered = (
        select(Order.dealer_id).where(Order.created_at >= start, Order.created_at < end,
                                      Order.status.not_in(EXCLUDED_STATUSES))
        .group_by(Order.dealer_id).subquery()
    )

    def grouped(key, label, joins, order_by):
        query = select(key.label("group_key"), func.max(label).label("group_label"),
                       func.count(Dealer.id).label("active"), func.count(ordered.c.dealer_id).label("ordered"))
        query = query.select_from(Dealer).outerjoin(ordered, ordered.c.dealer_id == Dealer.id)
        for target, on in joins:
            query = query.outerjoin(target, on)
        query = scope_to_staff(query.where(Dealer.status == "active"), staff)
        rows = db.session.execute(query.group_by(key).order_by(*order_by(key))).all()
        return [{"key": str(r.group_key), "label": r.group_label or str(r.group_key), "active": int(r.active),
                 "ordered": int(r.ordered), "coverage_bp": ratio_bp(r.ordered, r.active),
                 "coverage_text": rate_text(ratio_bp(r.ordered, r.active))} for r in rows]

    province = _province()
    province_row = Region.__table__.alias("province")
    by_region = grouped(province, province_row.c.name, [(province_row, province_row.c.code == province)],
                        lambda key: [func.count(Dealer.id).desc(), key])
    by_tier = grouped(Tier.code, Tier.name, [(Tier, Tier.id == Dealer.tier_id)],
                      lambda key: [func.min(Tier.rank), key])
    active = sum(i["active"] for i in by_tier)  # every dealer has exactly one tier
    reached = sum(i["ordered"] for i in by_tier)
    return {"month": month_text(month), "metric": "coverage_bp",
            "total": {"active": active, "ordered": reached, "coverage_bp": ratio_bp(reached, active),
                      "coverage_text": rate_text(ratio_bp(reached, active))},
            "items": by_region, "by_tier": by_tier}
