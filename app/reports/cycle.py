"""The dashboard's order cycle time: how long each step from submit to receipt took.

Read from the order events (`order_events`, one row per status change, written by
`app.orders.states.transition`) of the counted orders placed in the month (the dashboard's
counting rule). For each order:

- 提交 (submit): the event with no `from_status` (the `place` action);
- 审批 (approve): the first event to `approved` (a rep's, finance's or the automatic approval;
  a rep's approval over credit stays `pending_approval`, so its wait for finance is included);
- 发货 (ship): the first event to `partially_shipped` or `shipped` (the first parcel);
- 收货 (receive): the event to `completed` (the dealer's confirmation or the automatic one),
  measured from the event to `shipped` (everything sent).

A step counts only for orders that reached both of its ends. Median and P90 are computed in SQL
over each step's durations in seconds: the median is the middle value (the mean of the two
middle ones for an even count), P90 the nearest-rank value (the ⌈0.9·n⌉-th smallest).
"""
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, and_, case, cast, extract, func, literal, literal_column, select, union_all

from app.extensions import db
from app.kernel.clock import duration_text
from app.orders.models import Order, OrderEvent
from app.reports.months import counted, month_text, window
from app.reports.service import require_viewer

STEPS = (
    ("approve", "提交 → 审批"),
    ("ship", "审批 → 首次发货"),
    ("receive", "全部发货 → 确认收货"),
    ("total", "提交 → 确认收货（全程）"),
)
CYCLE_RULE = (
    "取本月提交的计入订单的状态记录：审批 = 首次变为“已审批”（含自动审批、财务复核），发货 = 首次发货（含部分发货），"
    "收货 = 从全部发货到确认收货（含系统自动确认）。只统计已走完该环节的订单；中位数为中间值（偶数个取中间两个的平均），"
    "P90 为从小到大第 ⌈0.9×n⌉ 个。"
)


def _seconds(later, earlier):
    """later − earlier in whole seconds, as SQL on both backends (timestamps are stored in UTC)."""
    if db.session.get_bind().dialect.name == "postgresql":
        diff = extract("epoch", later - earlier)
    else:
        diff = (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")
    return cast(func.round(diff), BigInteger)


def cycle_times(*, staff, month, today=None):
    """Per step: how many orders went through it, and the median and P90 of how long it took
    (seconds, and as Chinese text). Orders placed in `month`, of the dealers `staff` may see."""
    require_viewer(staff)
    start, end = window(month)

    def first(condition):
        return func.min(case((condition, OrderEvent.created_at)))

    moments = (
        counted(staff)
        .with_only_columns(
            Order.id.label("order_id"),
            first(OrderEvent.from_status.is_(None)).label("placed"),
            first(OrderEvent.to_status == "approved").label("approved"),
            first(OrderEvent.to_status.in_(("partially_shipped", "shipped"))).label("shipped_first"),
            first(OrderEvent.to_status == "shipped").label("shipped"),
            first(OrderEvent.to_status == "completed").label("completed"),
        )
        .join(OrderEvent, OrderEvent.order_id == Order.id)
        .where(Order.created_at >= start, Order.created_at < end)
        .group_by(Order.id)
        .cte("moments")  # one pass over the month's events, read by each step's branch below
    )
    ends = {"approve": ("approved", "placed"), "ship": ("shipped_first", "approved"),
            "receive": ("completed", "shipped"), "total": ("completed", "placed")}
    durations = union_all(*(
        select(literal(step).label("step"), _seconds(moments.c[later], moments.c[earlier]).label("seconds"))
        .where(and_(moments.c[later].is_not(None), moments.c[earlier].is_not(None)))
        for step, (later, earlier) in ends.items()
    )).subquery()
    ranked = select(
        durations.c.step, durations.c.seconds,
        func.row_number().over(partition_by=durations.c.step, order_by=durations.c.seconds).label("rn"),
        func.count().over(partition_by=durations.c.step).label("n"),
    ).subquery()
    n, rn = ranked.c.n, ranked.c.rn
    middle = rn.in_(((n + 1) // 2, (n + 2) // 2))  # integer division on both backends
    rows = db.session.execute(
        select(ranked.c.step, func.max(n),
               func.avg(case((middle, ranked.c.seconds))),
               func.max(case((rn == (n * 9 + 9) // 10, ranked.c.seconds))))
        .group_by(ranked.c.step)
    ).all()
    found = {step: (int(count), _half_up(median), int(p90)) for step, count, median, p90 in rows}
    items = []
    for step, label in STEPS:
        count, median, p90 = found.get(step, (0, None, None))
        items.append({"key": step, "label": label, "order_count": count,
                      "median_seconds": median, "p90_seconds": p90,
                      "median_text": duration_text(median), "p90_text": duration_text(p90)})
    return {"month": month_text(month), "metric": "seconds", "items": items,
            "series": [{"key": "median_seconds", "label": "中位数"}, {"key": "p90_seconds", "label": "P90"}]}


def _half_up(value):
    """A median (a whole number of seconds, or the mean of two: .5) rounded half up."""
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
