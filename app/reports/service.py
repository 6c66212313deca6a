"""The console dashboard's figures: one grouped SQL query per figure, scoped to the staff member.

Counting rule (shown on the dashboard too): an order counts on the China-time day and month it
was placed (`orders.created_at`, stored in UTC); cancelled and rejected orders never count; the
amount is the order's total payable (`total_fen`: lines less discount plus shipping). Region and
tier are the dealer's current ones; the province is the first two digits of the dealer's GB/T 2260
region code.

Who sees what: every active staff member gets a dashboard. A sales rep's figures cover only the
dealers assigned to them (`scope_to_staff`). Amounts are for the roles that see prices and credit
(admin, sales, finance); warehouse and marketing get counts and quantities, never an amount. The
list of dealers gone quiet is for the roles that see dealers (admin, sales, finance).
"""
from calendar import monthrange
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import case, func, literal_column, select

from app.dealers.models import Dealer, Region, Tier
from app.dealers.access import scope_to_staff
from app.extensions import db
from app.kernel.clock import BUSINESS_TZ, business_day_start, business_today
from app.kernel.errors import DomainError
from app.kernel.permissions import can
from app.orders.models import Order, OrderLine

EXCLUDED_STATUSES = ("cancelled", "rejected")
PERIODS = {"today": "今日", "month": "本月"}
TOP_LIMIT = 10
INACTIVE_DAYS = 30  # the same window as the reps' "dealer gone quiet" reminder
INACTIVE_LIST_LIMIT = 50
MAX_TREND_DAYS = 90

COUNTING_RULE = (
    "按下单时间（北京时间）计入当日、当月；已取消、已驳回的订单不计入；"
    "地区、等级按经销商当前资料，地区按省份汇总。"
)
AMOUNT_RULE = "金额为订单应付总额（商品金额减优惠加运费），商品排名按订单行金额。"


# --- access -----------------------------------------------------------------------------

def require_viewer(staff):
    if staff is None or not staff.active:
        raise DomainError("forbidden", "你没有查看仪表盘的权限", 403)


def sees_amounts(staff):
    return can(staff, "reports.amounts")


def sees_dealers(staff):
    return can(staff, "reports.dealers")


# --- periods ----------------------------------------------------------------------------



def period_days(period, today=None):
    """(first day, last day) of `period` in China time; 400 `invalid_period` for an unknown one."""
    today = today or business_today()
    if period == "today":
        return today, today
    if period == "month":
        return today.replace(day=1), today.replace(day=monthrange(today.year, today.month)[1])
    raise DomainError(
        "invalid_period", "统计周期只能是 today（今日）或 month（本月）", 400, {"period": ["只能是 today 或 month"]}
    )


def _period_bounds(period, today):
    first, last = period_days(period, today)
    return business_day_start(first), business_day_start(last + timedelta(days=1))


def _counted_orders(staff, start, end):
    """Orders that count, placed in [start, end), of the dealers `staff` may see (joined to Dealer)."""
    query = (
        select()
        .select_from(Order)
        .join(Dealer, Dealer.id == Order.dealer_id)
        .where(Order.created_at >= start, Order.created_at < end, Order.status.not_in(EXCLUDED_STATUSES))
    )
    return scope_to_staff(query, staff)


def _sum_fen(column):
    return func.coalesce(func.sum(column), 0)


# --- the figures ------------------------------------------------------------------------

def get_summary(*, staff, today=None):
    """Today's and this month's order count (and amount, for the roles that see amounts), and how
    many orders wait for approval (of which for finance's co-approval) and for shipment, whenever
    they were placed."""
    require_viewer(staff)
    today = today or business_today()
    day_start, day_end = _period_bounds("today", today)
    month_start, month_end = _period_bounds("month", today)
    in_today = (Order.created_at >= day_start) & (Order.created_at < day_end)
    row = db.session.execute(
        _counted_orders(staff, month_start, month_end).with_only_columns(
            func.count(Order.id),
            _sum_fen(Order.total_fen),
            _sum_fen(case((in_today, 1), else_=0)),
            _sum_fen(case((in_today, Order.total_fen), else_=0)),
        )
    ).one()
    is_pending = Order.status == "pending_approval"
    waiting = db.session.execute(
        scope_to_staff(
            select(
                _sum_fen(case((is_pending, 1), else_=0)),
                _sum_fen(case((is_pending & Order.rep_approved_by_id.is_not(None), 1), else_=0)),
                _sum_fen(case((Order.status != "pending_approval", 1), else_=0)),
                _sum_fen(case((Order.status == "partially_shipped", 1), else_=0)),
            )
            .select_from(Order).join(Dealer, Dealer.id == Order.dealer_id)
            .where(Order.status.in_(("pending_approval", "approved", "partially_shipped"))),
            staff,
        )
    ).one()
    amounts = sees_amounts(staff)
    return {
        "today": {"date": today.isoformat(), "order_count": int(row[2]),
                  "amount_fen": int(row[3]) if amounts else None},
        "month": {"from": month_start.astimezone(BUSINESS_TZ).date().isoformat(),
                  "to": (month_end.astimezone(BUSINESS_TZ).date() - timedelta(days=1)).isoformat(),
                  "order_count": int(row[0]), "amount_fen": int(row[1]) if amounts else None},
        "pending_approval": int(waiting[0]),
        # Of those, approved by the rep but over credit: they wait for finance.
        "awaiting_finance": int(waiting[1]),
        # Approved orders not yet shipped, and partially shipped ones with goods still to send.
        "awaiting_shipment": int(waiting[2]),
        "partially_shipped": int(waiting[3]),
    }


def _grouped(staff, period, today, key, label, *, joins=(), order_by_amount=True, limit=None,
             amount=None, quantity=None):
    """Rows of (key, label, order_count, amount_fen, [qty]) for counted orders grouped by `key`."""
    start, end = _period_bounds(period, today)
    amount = Order.total_fen if amount is None else amount
    columns = [key.label("group_key"), func.max(label).label("group_label"), func.count(func.distinct(Order.id)).label("order_count"),
               _sum_fen(amount).label("amount_fen")]
    if quantity is not None:
        columns.append(_sum_fen(quantity).label("qty"))
    query = _counted_orders(staff, start, end).with_only_columns(*columns)
    for target, on in joins:
        query = query.outerjoin(target, on)
    query = query.group_by(key)
    amounts = sees_amounts(staff)
    if amounts and order_by_amount:
        rank = [_sum_fen(amount).desc()]
    elif quantity is not None:
        rank = [_sum_fen(quantity).desc()]
    else:
        rank = [func.count(func.distinct(Order.id)).desc()]
    query = query.order_by(*rank, key)
    if limit:
        query = query.limit(limit)
    items = []
    for row in db.session.execute(query).all():
        item = {"key": str(row.group_key), "label": row.group_label or str(row.group_key), "order_count": int(row.order_count),
                "amount_fen": int(row.amount_fen) if amounts else None}
        if quantity is not None:
            item["qty"] = int(row.qty)
        items.append(item)
    return items


def _report(staff, period, today, items):
    first, last = period_days(period, today or business_today())
    return {
        "period": period, "period_label": PERIODS[period], "from": first.isoformat(), "to": last.isoformat(),
        "metric": "amount_fen" if sees_amounts(staff) else "order_count", "items": items,
    }


def sales_by_region(*, staff, period="month", today=None):
    """Counted orders and amount per province of the dealer, largest first."""
    require_viewer(staff)
    period_days(period, today)
    # Constants inline, not bound: PostgreSQL matches the GROUP BY expression to the selected one.
    province = func.substr(Dealer.region_code, literal_column("1"), literal_column("2")).op("||")(
        literal_column("'0000'"))
    province_row = Region.__table__.alias("province")
    items = _grouped(
        staff, period, today, province, province_row.c.name,
        joins=[(province_row, province_row.c.code == province)],
    )
    return _report(staff, period, today, items)


def sales_by_tier(*, staff, period="month", today=None):
    """Counted orders and amount per dealer tier, largest first."""
    require_viewer(staff)
    period_days(period, today)
    items = _grouped(staff, period, today, Tier.code, Tier.name, joins=[(Tier, Tier.id == Dealer.tier_id)])
    return _report(staff, period, today, items)


def top_dealers(*, staff, period="month", today=None, limit=TOP_LIMIT):
    """The dealers with the largest amount (order count, for roles without amounts), at most `limit`."""
    require_viewer(staff)
    period_days(period, today)
    items = _grouped(staff, period, today, Dealer.code, Dealer.name, limit=limit)
    return _report(staff, period, today, items)


def top_skus(*, staff, period="month", today=None, limit=TOP_LIMIT):
    """The SKUs with the largest line amount (quantity, for roles without amounts), at most `limit`.
    A SKU is grouped by its code, labelled with a name its order lines snapshotted."""
    require_viewer(staff)
    period_days(period, today)
    query_items = _grouped(
        staff, period, today, OrderLine.sku_code, OrderLine.name, limit=limit,
        joins=[(OrderLine, OrderLine.order_id == Order.id)], amount=OrderLine.amount_fen, quantity=OrderLine.qty,
    )
    return _report(staff, period, today, query_items)


def _china_day(column):
    """The China-time calendar day of a UTC timestamp column, as SQL (China has no DST)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(literal_column(f"'{BUSINESS_TZ.key}'"), column))
    return func.date(column, literal_column("'+8 hours'"))


def daily_sales(*, staff, days=30, today=None):
    """Counted orders (and amount) per China-time day for the last `days` days, oldest first,
    days without orders included as zeros."""
    require_viewer(staff)
    if not isinstance(days, int) or not 1 <= days <= MAX_TREND_DAYS:
        raise DomainError("invalid_days", f"天数必须是 1 到 {MAX_TREND_DAYS} 之间的整数", 400,
                          {"days": [f"1 到 {MAX_TREND_DAYS}"]})
    today = today or business_today()
    first = today - timedelta(days=days - 1)
    day = _china_day(Order.created_at)
    rows = db.session.execute(
        _counted_orders(staff, business_day_start(first), business_day_start(today + timedelta(days=1)))
        .with_only_columns(day.label("day"), func.count(Order.id), _sum_fen(Order.total_fen))
        .group_by(day)
    ).all()
    found = {str(d): (int(n), int(fen)) for d, n, fen in rows}
    amounts = sees_amounts(staff)
    items = []
    for offset in range(days):
        d = (first + timedelta(days=offset)).isoformat()
        n, fen = found.get(d, (0, 0))
        items.append({"key": d, "label": d[5:], "order_count": n, "amount_fen": fen if amounts else None})
    return {"days": days, "from": first.isoformat(), "to": today.isoformat(),
            "metric": "amount_fen" if amounts else "order_count", "items": items}


def inactive_dealers(*, staff, today=None, limit=INACTIVE_LIST_LIMIT):
    """Active dealers with no order (of any status) in the 30 China-time days before today —
    a dealer that never ordered counts from when it was created — the same rule as the reps'
    reminder. Longest silence first, at most `limit`; returns {"total", "items"}."""
    require_viewer(staff)
    if not sees_dealers(staff):
        raise DomainError("forbidden", "你的角色无权查看经销商", 403)
    from app.staff.models import Staff

    today = today or business_today()
    cutoff = business_day_start(today - timedelta(days=INACTIVE_DAYS))
    from app.orders.queries import last_order_at

    last_at = last_order_at(Dealer.id)
    since = func.coalesce(last_at, Dealer.created_at)
    base = scope_to_staff(
        select(Dealer.code, Dealer.name, Staff.name.label("rep_name"), last_at.label("last_at"), since.label("since"))
        .select_from(Dealer)
        .outerjoin(Staff, Staff.id == Dealer.rep_id)
        .where(Dealer.status == "active", since < cutoff),
        staff,
    )
    total = db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    items = []
    for row in db.session.execute(base.order_by(since, Dealer.code).limit(limit)).all():
        since_day = _as_utc(row.since).astimezone(BUSINESS_TZ).date()
        last_day = _as_utc(row.last_at).astimezone(BUSINESS_TZ).date() if row.last_at is not None else None
        items.append({"code": row.code, "name": row.name, "rep_name": row.rep_name,
                      "last_order_date": last_day.isoformat() if last_day else None,
                      "days_silent": (today - since_day).days})
    return {"days": INACTIVE_DAYS, "total": total, "items": items}


def _as_utc(value):
    if isinstance(value, str):  # SQLite may hand back an aggregate's text
        value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
