"""Rebates (返利): rules, period closes, approval, and what a dealer sees.

Periods are China calendar periods: a month `2026-11`, a quarter `2026Q4`, a year `2026`
(`parse_period`). A rule counts only the days of a period inside its validity (the
"window"); last year's window is the same dates one year earlier.

The basis amount of a dealer in a window (integer fen, exact, no rounding):
- shipped (发货金额): Σ shipped qty × the order line's unit price, over shipments made in
  the window, minus Σ qty × unit price of returns received back into stock in the window.
- paid (回款金额): Σ line amounts (unit price × qty) of the dealer's orders that became
  fully paid in the window — `paid_fen + rebate_fen ≥ total_fen`, not cancelled or
  rejected, and the last payment applied to the order (`payments.applied_fen > 0`, its
  paid_at or, lacking it, created_at) falls in the window; an order paid in full when
  submitted (prepaid balance, or wholly by rebate) counts at its submission — minus returns
  received in the window of orders fully paid by the window's end. Orders on credit (账期)
  are billed through shipments and repaid against the receivable, not order by order, so
  they never count as paid: rules for credit dealers use the shipped basis.
Both count only lines whose SKU is in the rule's scope (a category includes its
sub-categories) and are goods amounts at the order lines' snapshot unit prices, before
order-level discounts and shipping. A negative amount (more returned than shipped) earns
nothing.

Rates: the highest volume tier whose threshold the amount reaches (≥) sets the rate for
the whole amount (全额累进, not per slice). The growth rebate adds its rate, also on the
whole amount, when last year's amount in the same window is at least the rule's minimum
(and above zero) and `amount ≥ last_year × (1 + threshold)`, compared in integers.

Rounding: once per document. `rebate_fen = amount × (tier rate + growth rate) / 10000`,
ROUND_HALF_UP to the fen (`app.kernel.money.apply_bp`); the document's lines are exact integer
amounts whose sum is the basis amount, so nothing is rounded per line.

Closing (`close_period`) writes one draft document per (rule, dealer, period) with a
positive rebate, its contributing shipments/orders/returns as lines. Closing again
recomputes drafts (a draft that no longer earns anything is deleted) and leaves approved
and rejected documents as they are, so it never duplicates. Approving credits the
dealer's rebate account once (`app.funds.ledger`, ref_type "rebate"): the dealer's account
row is locked first, then the document, whose status is checked again; a unique index on
rebate credits backs it.
"""
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from sqlalchemy import false, func, or_, select, type_coerce, union_all
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.catalog.models import Category, Sku
from app.database import dialect_insert, write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.funds import ledger
from app.funds.models import LedgerEntry, Payment
from app.kernel.clock import business_day_start, business_today, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.inputs import choice, day, integer, invalid, text
from app.kernel.money import BP_PER_UNIT, apply_bp, format_yuan, parse_yuan
from app.kernel.permissions import require
from app.models_base import UTCDateTime
from app.orders.models import Order, OrderLine, Shipment, ShipmentLine
from app.rebates.models import (
    APPLIES_LABELS,
    BASIS_LABELS,
    DOCUMENT_STATUS_LABELS,
    PERIOD_KINDS,
    PERIOD_LABELS,
    SCOPE_LABELS,
    RebateClose,
    RebateDocument,
    RebateDocumentLine,
    RebateRule,
    RebateTarget,
    RebateTier,
)
from app.returns.models import ReturnLine, ReturnRequest

SYSTEM = SimpleNamespace(id=None, name="系统（返利结算）")
MAX_TIERS = 10
MAX_TARGETS = 500
STAFF_PAGE_SIZE = 50
HISTORY_SIZE = 20
UNPAID_STATUSES = ("cancelled", "rejected")


# --- periods -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year in China: `key` as typed, `start`..`end` inclusive."""

    kind: str
    year: int
    number: int  # month 1–12, quarter 1–4, 1 for a year

    @property
    def key(self):
        return {"month": f"{self.year}-{self.number:02d}", "quarter": f"{self.year}Q{self.number}",
                "year": f"{self.year}"}[self.kind]

    @property
    def label(self):
        return {"month": f"{self.year}年{self.number}月", "quarter": f"{self.year}年第{self.number}季度",
                "year": f"{self.year}年"}[self.kind]

    @property
    def _months(self):
        return {"month": (self.number, self.number), "quarter": (3 * self.number - 2, 3 * self.number),
                "year": (1, 12)}[self.kind]

    @property
    def start(self):
        return date(self.year, self._months[0], 1)

    @property
    def end(self):
        last = self._months[1]
        following = date(self.year + 1, 1, 1) if last == 12 else date(self.year, last + 1, 1)
        return following - timedelta(days=1)

    def previous(self):
        return Period.containing(self.kind, self.start - timedelta(days=1))

    @staticmethod
    def containing(kind, day):
        number = {"month": day.month, "quarter": (day.month - 1) // 3 + 1, "year": 1}[kind]
        return Period(kind, day.year, number)


_PERIOD = re.compile(r"(\d{4})(?:-(\d{1,2})|[-]?[Qq]([1-4]))?")
PERIOD_HINT = "期间格式应为 2026-11（月）、2026Q4（季度）或 2026（年）"


def parse_period(value):
    """`2026-11` → month, `2026Q4` (or 2026-Q4) → quarter, `2026` → year; anything else is a
    422 `invalid_period` with a Chinese message."""
    raw = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else ""
    match = _PERIOD.fullmatch(raw)
    if not match:
        raise DomainError("invalid_period", f"{PERIOD_HINT}，收到的是 {str(value)[:20]!r}", 422)
    year, month, quarter = int(match.group(1)), match.group(2), match.group(3)
    if not 2000 <= year <= 2099:
        raise DomainError("invalid_period", f"年份应在 2000–2099 之间：{raw}", 422)
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise DomainError("invalid_period", f"月份应为 01–12：{raw}（{PERIOD_HINT}）", 422)
        return Period("month", year, int(month))
    if quarter is not None:
        return Period("quarter", year, int(quarter))
    return Period("year", year, 1)


def _year_earlier(day):
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


# --- a rule as computation sees it --------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """The facts of a rule the computation needs (tiers ascending by threshold)."""

    rule_id: int
    name: str
    basis: str
    valid_from: date
    valid_to: date | None
    tiers: tuple  # ((threshold_fen, rate_bp), ...)
    sku_ids: frozenset | None  # None: every SKU
    dealer_ids: frozenset | None  # None: every dealer
    growth_threshold_bp: int | None = None
    growth_rate_bp: int | None = None
    growth_min_last_year_fen: int | None = None

    def window(self, start, end):
        """The days of start..end inside the rule's validity, or None."""
        start = max(start, self.valid_from)
        end = min(end, self.valid_to) if self.valid_to else end
        return (start, end) if start <= end else None


def spec_of(session, rule):
    """A rule's `Spec`: categories expanded to their SKUs (sub-categories included), tiers to dealers."""
    sku_ids = dealer_ids = None
    if rule.scope == "skus":
        sku_ids = frozenset(rule.target_ids("sku"))
    elif rule.scope == "categories":
        parents = dict(session.execute(select(Category.id, Category.parent_id)).all())
        chosen = set(rule.target_ids("category"))

        def inside(cat):
            seen = set()
            while cat is not None and cat not in seen:
                if cat in chosen:
                    return True
                seen.add(cat)
                cat = parents.get(cat)
            return False

        categories = [c for c in parents if inside(c)]
        sku_ids = frozenset(session.execute(select(Sku.id).where(Sku.category_id.in_(categories))).scalars()) \
            if categories else frozenset()
    if rule.applies_to == "dealers":
        dealer_ids = frozenset(rule.target_ids("dealer"))
    elif rule.applies_to == "tiers":
        tiers = rule.target_ids("tier")
        dealer_ids = frozenset(session.execute(select(Dealer.id).where(Dealer.tier_id.in_(tiers))).scalars()) \
            if tiers else frozenset()
    return Spec(
        rule_id=rule.id, name=rule.name, basis=rule.basis, valid_from=rule.valid_from, valid_to=rule.valid_to,
        tiers=tuple((t.threshold_fen, t.rate_bp) for t in sorted(rule.tiers, key=lambda t: t.threshold_fen)),
        sku_ids=sku_ids, dealer_ids=dealer_ids, growth_threshold_bp=rule.growth_threshold_bp,
        growth_rate_bp=rule.growth_rate_bp, growth_min_last_year_fen=rule.growth_min_last_year_fen,
    )


# --- rates and rounding -------------------------------------------------------------------

@dataclass(frozen=True)
class Rates:
    tier_threshold_fen: int  # the tier reached (0 when none)
    tier_rate_bp: int
    growth_rate_bp: int

    @property
    def rate_bp(self):
        return self.tier_rate_bp + self.growth_rate_bp


def growth_reached(spec, amount_fen, last_year_fen):
    """Whether `amount_fen` grew enough over last year's amount to earn the growth rebate."""
    if spec.growth_rate_bp is None or last_year_fen is None or amount_fen <= 0:
        return False
    if last_year_fen <= 0 or last_year_fen < (spec.growth_min_last_year_fen or 0):
        return False
    return amount_fen * BP_PER_UNIT >= last_year_fen * (BP_PER_UNIT + (spec.growth_threshold_bp or 0))


def rates_for(spec, amount_fen, last_year_fen=None):
    """The rates `amount_fen` earns: the highest tier reached applies to the whole amount."""
    reached = [tier for tier in spec.tiers if amount_fen > 0 and amount_fen >= tier[0]]
    threshold, rate = reached[-1] if reached else (0, 0)
    growth = spec.growth_rate_bp if growth_reached(spec, amount_fen, last_year_fen) else 0
    return Rates(threshold, rate, growth)


def rebate_fen(amount_fen, rate_bp):
    """The rounding rule: amount × rate_bp / 10000, ROUND_HALF_UP to the fen, once per document."""
    if amount_fen <= 0 or rate_bp <= 0:
        return 0
    return apply_bp(amount_fen, rate_bp)


# --- basis amounts ------------------------------------------------------------------------

def _bounds(start, end):
    return business_day_start(start), business_day_start(end + timedelta(days=1))


def _paid_orders():
    """order_id and when it became fully paid: its last applied payment (WeChat Pay, a confirmed
    offline transfer), or its submission for an order paid in full when submitted (from the
    prepaid balance, or wholly by rebate)."""
    when = func.coalesce(Payment.paid_at, Payment.created_at)
    by_payment = (
        select(Payment.order_id.label("order_id"), when.label("paid_at"))
        .where(Payment.applied_fen > 0, Payment.order_id.is_not(None))
    )
    at_submit = select(Order.id.label("order_id"), Order.created_at.label("paid_at")).where(
        or_(Order.payment_method == "prepaid", Order.rebate_fen >= Order.total_fen)
    )
    both = union_all(by_payment, at_submit).subquery()
    paid_at = type_coerce(func.max(both.c.paid_at), UTCDateTime)
    return select(both.c.order_id, paid_at.label("paid_at")).group_by(both.c.order_id).subquery()


def _fully_paid(paid):
    # What the dealer owes for an order is its total less the rebate it spent on it.
    return [Order.total_fen > 0, Order.paid_fen + Order.rebate_fen >= Order.total_fen,
            Order.status.not_in(UNPAID_STATUSES), paid.c.order_id == Order.id]


def _scoped(query, spec, sku_column, dealer_ids):
    if spec.sku_ids is not None:
        query = query.where(sku_column.in_(sorted(spec.sku_ids)) if spec.sku_ids else false())
    if dealer_ids is not None:
        query = query.where(Order.dealer_id.in_(sorted(dealer_ids)) if dealer_ids else false())
    return query


def basis_lines(session, spec, start, end, dealer_ids=None):
    """{dealer_id: [line dict]} of what counts for `spec` from China day `start` to `end`
    (inclusive), for the rule's dealers (narrowed to `dealer_ids` when given), oldest first.
    Each line's `amount_fen` is exact (qty × unit price; negative for returns)."""
    if spec.dealer_ids is not None:
        dealer_ids = spec.dealer_ids if dealer_ids is None else spec.dealer_ids & frozenset(dealer_ids)
    low, high = _bounds(start, end)
    lines = defaultdict(list)

    def add(dealer_id, **line):
        lines[dealer_id].append(line)

    if spec.basis == "shipped":
        query = (
            select(Shipment.id, Shipment.created_at, Shipment.carrier, Shipment.tracking_no, Order.id, Order.order_no,
                   Order.dealer_id, OrderLine.id, OrderLine.sku_id, OrderLine.sku_code, OrderLine.name,
                   OrderLine.unit_price_fen, func.sum(ShipmentLine.qty))
            .select_from(ShipmentLine).join(Shipment, Shipment.id == ShipmentLine.shipment_id)
            .join(OrderLine, OrderLine.id == ShipmentLine.order_line_id).join(Order, Order.id == OrderLine.order_id)
            .where(Shipment.created_at >= low, Shipment.created_at < high)
            .group_by(Shipment.id, Shipment.created_at, Shipment.carrier, Shipment.tracking_no, Order.id,
                      Order.order_no, Order.dealer_id, OrderLine.id, OrderLine.sku_id, OrderLine.sku_code,
                      OrderLine.name, OrderLine.unit_price_fen)
            .order_by(Shipment.created_at, Shipment.id, OrderLine.id)
        )
        for (ship_id, at, carrier, tracking_no, order_id, order_no, dealer_id, _line_id, sku_id, sku_code, name,
             unit, qty) in session.execute(_scoped(query, spec, OrderLine.sku_id, dealer_ids)):
            add(dealer_id, source="shipment", ref_id=ship_id, ref_label=f"{carrier} {tracking_no}"[:80],
                order_id=order_id, order_no=order_no, sku_id=sku_id, sku_code=sku_code, name=name, qty=int(qty),
                unit_price_fen=unit, amount_fen=unit * int(qty), happened_at=at)
    else:
        paid = _paid_orders()
        query = (
            select(Order.id, Order.order_no, Order.dealer_id, paid.c.paid_at, OrderLine.sku_id, OrderLine.sku_code,
                   OrderLine.name, OrderLine.qty, OrderLine.unit_price_fen, OrderLine.amount_fen)
            .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id).join(paid, paid.c.order_id == Order.id)
            .where(*_fully_paid(paid), paid.c.paid_at >= low, paid.c.paid_at < high)
            .order_by(paid.c.paid_at, Order.id, OrderLine.id)
        )
        for order_id, order_no, dealer_id, at, sku_id, sku_code, name, qty, unit, amount in session.execute(
                _scoped(query, spec, OrderLine.sku_id, dealer_ids)):
            add(dealer_id, source="order", ref_id=order_id, ref_label=f"订单 {order_no} 付清", order_id=order_id,
                order_no=order_no, sku_id=sku_id, sku_code=sku_code, name=name, qty=qty, unit_price_fen=unit,
                amount_fen=amount, happened_at=at)

    returns = (
        select(ReturnRequest.id, ReturnRequest.return_no, ReturnRequest.received_at, Order.id, Order.order_no,
               Order.dealer_id, ReturnLine.sku_id, ReturnLine.sku_code, ReturnLine.name, ReturnLine.qty,
               ReturnLine.unit_price_fen)
        .select_from(ReturnLine).join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
        .join(Order, Order.id == ReturnRequest.order_id)
        .where(ReturnRequest.status == "received", ReturnRequest.received_at >= low, ReturnRequest.received_at < high)
        .order_by(ReturnRequest.received_at, ReturnRequest.id, ReturnLine.id)
    )
    if spec.basis == "paid":
        paid = _paid_orders()
        returns = returns.join(paid, paid.c.order_id == Order.id).where(*_fully_paid(paid), paid.c.paid_at < high)
    for (return_id, return_no, at, order_id, order_no, dealer_id, sku_id, sku_code, name, qty,
         unit) in session.execute(_scoped(returns, spec, ReturnLine.sku_id, dealer_ids)):
        add(dealer_id, source="return", ref_id=return_id, ref_label=f"退货单 {return_no}"[:80], order_id=order_id,
            order_no=order_no, sku_id=sku_id, sku_code=sku_code, name=name, qty=qty, unit_price_fen=unit,
            amount_fen=-unit * qty, happened_at=at)
    # In the order things happened, so finance reads a document like a statement.
    return {dealer: sorted(rows, key=lambda line: line["happened_at"]) for dealer, rows in lines.items()}


def basis_totals(session, spec, start, end, dealer_ids=None):
    """{dealer_id: basis amount} (see `basis_lines`)."""
    return {dealer: sum(line["amount_fen"] for line in rows)
            for dealer, rows in basis_lines(session, spec, start, end, dealer_ids).items()}


@dataclass
class Computation:
    dealer_id: int
    window: tuple
    amount_fen: int
    last_year_fen: int | None
    rates: Rates
    rebate_fen: int
    lines: list


def compute(session, spec, period, dealer_ids=None):
    """{dealer_id: Computation} of every dealer with basis activity in the rule's window of `period`."""
    window = spec.window(period.start, period.end)
    if window is None:
        return {}
    lines = basis_lines(session, spec, *window, dealer_ids)
    last_year = {}
    if spec.growth_rate_bp is not None and lines:
        last_year = basis_totals(session, spec, _year_earlier(window[0]), _year_earlier(window[1]), set(lines))
    result = {}
    for dealer_id, rows in lines.items():
        amount = sum(line["amount_fen"] for line in rows)
        last = last_year.get(dealer_id, 0) if spec.growth_rate_bp is not None else None
        rates = rates_for(spec, amount, last)
        result[dealer_id] = Computation(dealer_id, window, amount, last, rates, rebate_fen(amount, rates.rate_bp), rows)
    return result


# --- closing a period -----------------------------------------------------------------------

def _rules_for(session, period, rule_ids=None):
    query = (
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .where(RebateRule.active.is_(True), RebateRule.period_kind == period.kind,
               RebateRule.valid_from <= period.end,
               or_(RebateRule.valid_to.is_(None), RebateRule.valid_to >= period.start))
        .order_by(RebateRule.id)
    )
    if rule_ids is not None:
        query = query.where(RebateRule.id.in_(list(rule_ids)))
    return session.execute(query).scalars().all()


def close_period(*, period, staff=None, rule_ids=None, today=None):
    """Compute the rebate documents of every active rule of `period`'s kind (`2026Q4`,
    `2026-11`, `2026`) whose validity overlaps it; one transaction per rule.

    `staff` (admin/finance) closes from the console; None is the CLI or the scheduler.
    Returns {"period", "label", "rules": [{rule_id, name, created, recomputed, removed, final}]}.
    Raises 422 `invalid_period`, 409 `period_not_ended` (the period's last China day is
    not over yet), 403 for other roles.
    """
    if staff is not None:
        require(staff, "rebates.manage", "你没有结算返利的权限（仅管理员与财务）")
    period = period if isinstance(period, Period) else parse_period(period)
    today = today or business_today()
    if period.end >= today:
        raise DomainError("period_not_ended", f"{period.label}尚未结束（{period.end:%Y-%m-%d} 之后才能结算）", 409,
                          {"period": period.key})
    ids = [rule.id for rule in _rules_for(db.session, period, rule_ids)]
    db.session.rollback()
    results = [_close_rule(rule_id, period, staff or SYSTEM) for rule_id in ids]
    return {"period": period.key, "label": period.label, "rules": [r for r in results if r is not None]}


def _close_rule(rule_id, period, actor):
    now = utcnow()
    closes = RebateClose.__table__
    with write_transaction() as session:
        session.execute(dialect_insert(session, closes).values(rule_id=rule_id, period=period.key, runs=0)
                        .on_conflict_do_nothing(index_elements=[closes.c.rule_id, closes.c.period]))
        # Two closes of the same rule and period (the scheduler and a clerk) queue here.
        close = session.execute(
            select(RebateClose).where(RebateClose.rule_id == rule_id, RebateClose.period == period.key)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one()
        rules = _rules_for(session, period, [rule_id])
        if not rules:  # deactivated meanwhile
            return None
        rule = rules[0]
        computed = compute(session, spec_of(session, rule), period)
        existing = {doc.dealer_id: doc for doc in session.execute(
            select(RebateDocument).options(selectinload(RebateDocument.lines))
            .where(RebateDocument.rule_id == rule_id, RebateDocument.period == period.key)
            .with_for_update().execution_options(populate_existing=True)
        ).scalars()}
        counts = Counter()
        for dealer_id in sorted(set(computed) | set(existing)):
            result, doc = computed.get(dealer_id), existing.get(dealer_id)
            if doc is not None and doc.status != "draft":
                counts["final"] += 1
                continue
            if result is None or result.rebate_fen <= 0:
                if doc is not None:
                    session.delete(doc)
                    counts["removed"] += 1
                continue
            if doc is None:
                doc = RebateDocument(rule_id=rule_id, dealer_id=dealer_id, period=period.key, status="draft",
                                     created_at=now)
                session.add(doc)
                counts["created"] += 1
            else:
                doc.lines.clear()
                session.flush()
                counts["recomputed"] += 1
            doc.window_start, doc.window_end = result.window
            doc.rule_name, doc.basis = rule.name, rule.basis
            doc.basis_amount_fen, doc.last_year_amount_fen = result.amount_fen, result.last_year_fen
            doc.tier_threshold_fen, doc.tier_rate_bp = result.rates.tier_threshold_fen, result.rates.tier_rate_bp
            doc.growth_rate_bp, doc.rate_bp = result.rates.growth_rate_bp, result.rates.rate_bp
            doc.rebate_fen, doc.computed_at = result.rebate_fen, now
            doc.lines.extend(RebateDocumentLine(**line) for line in result.lines)
        close.closed_at, close.closed_by, close.runs = now, actor.name[:64], close.runs + 1
        summary = {"rule_id": rule_id, "name": rule.name, **{k: counts[k] for k in
                                                              ("created", "recomputed", "removed", "final")}}
        audit.record(session, actor=actor, action="rebate.close", entity_type="rebate_rule", entity_id=rule_id,
                     label=f"{rule.name} · {period.label}", after={"period": period.key, **summary})
    return summary


def close_due_periods(today=None):
    """Periodic job: close each rule's last finished period (the month, quarter or year
    before the one today is in, China time) unless it was closed already. Safe to run
    any number of times. Returns the `close_period` results that closed something."""
    today = today or business_today()
    done = []
    for kind in PERIOD_KINDS:
        period = Period.containing(kind, today).previous()
        closed = set(db.session.execute(select(RebateClose.rule_id).where(
            RebateClose.period == period.key, RebateClose.closed_at.is_not(None))).scalars())
        due = [rule.id for rule in _rules_for(db.session, period) if rule.id not in closed]
        if due:
            done.append(close_period(period=period, rule_ids=due, today=today))
    db.session.rollback()
    return done


# --- approving ------------------------------------------------------------------------------

def _document_dealer(session, document_id):
    dealer_id = session.execute(select(RebateDocument.dealer_id).where(RebateDocument.id == document_id)).scalar()
    if dealer_id is None:
        raise NotFound("返利单不存在", "rebate_document_not_found")
    return dealer_id


def _lock_draft(session, document_id, action):
    doc = session.execute(
        select(RebateDocument).where(RebateDocument.id == document_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if doc.status != "draft":
        raise DomainError("rebate_document_decided",
                          f"返利单 #{doc.id} 当前状态为「{DOCUMENT_STATUS_LABELS[doc.status]}」，不能{action}",
                          409, {"status": doc.status})
    return doc


def approve_document(*, staff, document_id, reason=None):
    """Finance approves a draft: its rebate is credited to the dealer's rebate account
    (ledger ref_type "rebate", ref_id the document) and the dealer is notified, in one
    transaction. Exactly once: two approvals at once → one credit, the other a 409
    `rebate_document_decided`. 403 for other roles, 404 for an unknown document."""
    require(staff, "rebates.manage", "你没有审核返利的权限（仅管理员与财务）")
    reason = text(reason, field="reason", label="说明", max_len=200, required=False) or None
    with write_transaction() as session:
        dealer_id = _document_dealer(session, document_id)
        balances = ledger.lock_balances(session, dealer_id)  # the ledger's lock order: account row first
        doc = _lock_draft(session, document_id, "审核通过")
        now = utcnow()
        ledger.post(session, balances, [ledger.Movement(
            "rebate", doc.rebate_fen, "rebate", doc.id,
            f"返利单 #{doc.id}：{doc.rule_name} {parse_period(doc.period).label}"[:200],
        )], actor=staff, actor_type="staff", at=now)
        doc.status, doc.decided_by_id, doc.decided_by_name, doc.decided_at = "approved", staff.id, staff.name, now
        doc.decision_reason = reason
        audit.record(session, actor=staff, action="rebate.approve", entity_type="rebate", entity_id=doc.id,
                     label=f"{doc.rule_name} {doc.period}", before={"status": "draft"},
                     after={"status": "approved", "rebate_fen": doc.rebate_fen, "dealer_id": dealer_id}, reason=reason)
        publish(session, "rebate.approved", document=doc, period_label=parse_period(doc.period).label)
    return doc


def reject_document(*, staff, document_id, reason):
    """Finance rejects a draft with a reason (required); nothing is credited. A rejected
    document stays rejected: closing the period again does not recreate it."""
    require(staff, "rebates.manage", "你没有审核返利的权限（仅管理员与财务）")
    reason = text(reason, field="reason", label="驳回原因", max_len=200)
    with write_transaction() as session:
        _document_dealer(session, document_id)
        doc = _lock_draft(session, document_id, "驳回")
        doc.status, doc.decided_by_id, doc.decided_by_name = "rejected", staff.id, staff.name
        doc.decided_at, doc.decision_reason = utcnow(), reason
        audit.record(session, actor=staff, action="rebate.reject", entity_type="rebate", entity_id=doc.id,
                     label=f"{doc.rule_name} {doc.period}", before={"status": "draft"}, after={"status": "rejected"},
                     reason=reason)
    return doc


# --- rules ------------------------------------------------------------------------------------

def _percent_bp(value, *, field, label, allow_zero=False):
    """'2' / '2.5%' / '0.25' (percent, up to two decimals) → basis points."""
    raw = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip().removesuffix("%").strip()
    try:
        bp = Decimal(raw) * 100
    except InvalidOperation:
        raise invalid(field, f"{label}应为百分比数字，例如 2 或 2.5") from None
    if not bp.is_finite() or bp != bp.to_integral_value():
        raise invalid(field, f"{label}最多两位小数（单位：%）")
    bp = int(bp)
    if bp < 0 or (bp == 0 and not allow_zero) or bp > 10_000:
        raise invalid(field, f"{label}应在 {'0' if allow_zero else '0.01'}% 到 100% 之间")
    return bp


def _fen(value, *, field, label):
    try:
        return parse_yuan(value)
    except ValueError as exc:
        raise invalid(field, f"{label}：{exc}") from None


def _codes(value):
    return [c for c in re.split(r"[\s,，、;；]+", unicodedata.normalize("NFKC", value or "")) if c]


def rule_args_from_form(form):
    """A console form's text (amounts in yuan, rates in %) → `create_rule`/`update_rule`
    keyword arguments. 422 `invalid_field` naming the field for anything malformed."""
    tiers = []
    for n in range(1, MAX_TIERS + 1):
        threshold, rate = (form.get(f"tier_threshold_{n}") or "").strip(), (form.get(f"tier_rate_{n}") or "").strip()
        if not threshold and not rate:
            continue
        if not threshold or not rate:
            raise invalid(f"tier_{n}", f"第 {n} 档请同时填写门槛金额和返利比例")
        tiers.append((_fen(threshold, field=f"tier_{n}", label=f"第 {n} 档门槛"),
                      _percent_bp(rate, field=f"tier_{n}", label=f"第 {n} 档返利比例")))
    growth = None
    if any((form.get(k) or "").strip() for k in ("growth_threshold", "growth_rate", "growth_min_last_year")):
        if not all((form.get(k) or "").strip() for k in ("growth_threshold", "growth_rate", "growth_min_last_year")):
            raise invalid("growth", "增长返利请同时填写增长率门槛、额外返利比例和去年同期最低金额（或全部留空）")
        growth = (_percent_bp(form["growth_threshold"], field="growth", label="增长率门槛", allow_zero=True),
                  _percent_bp(form["growth_rate"], field="growth", label="额外返利比例"),
                  _fen(form["growth_min_last_year"], field="growth", label="去年同期最低金额"))

    def ids(name):
        values = form.getlist(name) if hasattr(form, "getlist") else form.get(name) or []
        return [integer(v, field=name, label="选项", minimum=1, maximum=10**15) for v in values if str(v).strip()]

    return {
        "name": form.get("name"), "period_kind": form.get("period_kind"), "basis": form.get("basis"),
        "scope": form.get("scope") or "all", "category_ids": ids("category_ids"),
        "sku_codes": _codes(form.get("sku_codes")), "applies_to": form.get("applies_to") or "all",
        "tier_ids": ids("tier_ids"), "dealer_codes": _codes(form.get("dealer_codes")),
        "valid_from": form.get("valid_from"), "valid_to": form.get("valid_to") or None,
        "tiers": tiers, "growth": growth, "active": form.get("active") in ("1", "on", "true", True),
    }


def _resolve(session, model, column, values, field, what):
    values = list(dict.fromkeys(values))
    if len(values) > MAX_TARGETS:
        raise invalid(field, f"{what}最多 {MAX_TARGETS} 个")
    found = dict(session.execute(select(column, model.id).where(column.in_(values))).all()) if values else {}
    missing = [str(v) for v in values if v not in found]
    if missing:
        raise invalid(field, f"以下{what}不存在：{'、'.join(missing[:20])}")
    return [found[v] for v in values]


def _clean_rule(session, *, name, period_kind, basis, scope="all", category_ids=(), sku_ids=(), sku_codes=(),
                applies_to="all", tier_ids=(), dealer_ids=(), dealer_codes=(), valid_from, valid_to=None, tiers,
                growth=None, active=True):
    clean = {
        "name": text(name, field="name", label="规则名称", max_len=64),
        "period_kind": choice(period_kind, field="period_kind", label="结算周期", choices=PERIOD_LABELS),
        "basis": choice(basis, field="basis", label="计算基数", choices=BASIS_LABELS),
        "scope": choice(scope, field="scope", label="商品范围", choices=SCOPE_LABELS),
        "applies_to": choice(applies_to, field="applies_to", label="适用经销商", choices=APPLIES_LABELS),
        "valid_from": day(valid_from, field="valid_from", label="生效日期"),
        "valid_to": day(valid_to, field="valid_to", label="失效日期", required=False),
        "active": bool(active),
    }
    if clean["valid_to"] and clean["valid_to"] < clean["valid_from"]:
        raise invalid("valid_to", "失效日期不能早于生效日期")
    if not tiers:
        raise invalid("tiers", "至少填写一档返利（门槛金额与返利比例）")
    if len(tiers) > MAX_TIERS:
        raise invalid("tiers", f"最多 {MAX_TIERS} 档")
    typed = sorted(
        (integer(threshold, field="tiers", label="门槛金额（分）", minimum=0, maximum=10**14),
         integer(rate, field="tiers", label="返利比例（基点）", minimum=1, maximum=10_000))
        for threshold, rate in tiers
    )
    checked = []
    for threshold, rate in typed:
        if checked and threshold == checked[-1][0]:
            raise invalid("tiers", f"两档的门槛金额相同：{format_yuan(threshold)}")
        if checked and rate < checked[-1][1]:
            raise invalid("tiers", f"门槛 {format_yuan(threshold)} 的返利比例不能低于较低一档")
        checked.append((threshold, rate))
    clean["tiers"] = checked
    clean["growth"] = None
    if growth is not None:
        threshold_bp, rate_bp, minimum = growth
        clean["growth"] = (
            integer(threshold_bp, field="growth", label="增长率门槛（基点）", minimum=0, maximum=10**6),
            integer(rate_bp, field="growth", label="额外返利比例（基点）", minimum=1, maximum=10_000),
            integer(minimum, field="growth", label="去年同期最低金额（分）", minimum=1, maximum=10**14),
        )
    targets = []
    if clean["scope"] == "categories":
        cats = _resolve(session, Category, Category.id, category_ids, "category_ids", "商品分类")
        if not cats:
            raise invalid("category_ids", "商品范围为“指定分类”时请至少选择一个分类")
        targets += [("category", c) for c in cats]
    elif clean["scope"] == "skus":
        skus = _resolve(session, Sku, Sku.id, sku_ids, "sku_codes", "商品") + \
            _resolve(session, Sku, Sku.code, sku_codes, "sku_codes", "商品编码")
        if not skus:
            raise invalid("sku_codes", "商品范围为“指定商品”时请至少填写一个商品编码")
        targets += [("sku", s) for s in dict.fromkeys(skus)]
    if clean["applies_to"] == "tiers":
        tiers_ = _resolve(session, Tier, Tier.id, tier_ids, "tier_ids", "经销商等级")
        if not tiers_:
            raise invalid("tier_ids", "适用“指定等级”时请至少选择一个等级")
        targets += [("tier", t) for t in tiers_]
    elif clean["applies_to"] == "dealers":
        dealers = _resolve(session, Dealer, Dealer.id, dealer_ids, "dealer_codes", "经销商") + \
            _resolve(session, Dealer, Dealer.code, dealer_codes, "dealer_codes", "经销商编码")
        if not dealers:
            raise invalid("dealer_codes", "适用“指定经销商”时请至少填写一个经销商编码")
        targets += [("dealer", d) for d in dict.fromkeys(dealers)]
    clean["targets"] = targets
    return clean


def _audit_view(rule):
    return {
        "name": rule.name, "period_kind": rule.period_kind, "basis": rule.basis, "scope": rule.scope,
        "applies_to": rule.applies_to, "valid_from": rule.valid_from, "valid_to": rule.valid_to,
        "tiers": [[t.threshold_fen, t.rate_bp] for t in sorted(rule.tiers, key=lambda t: t.threshold_fen)],
        "targets": sorted([t.kind, t.target_id] for t in rule.targets),
        "growth": [rule.growth_threshold_bp, rule.growth_rate_bp, rule.growth_min_last_year_fen]
        if rule.growth_rate_bp is not None else None,
        "active": rule.active,
    }


def _apply(rule, clean, now):
    for key in ("name", "period_kind", "basis", "scope", "applies_to", "valid_from", "valid_to", "active"):
        setattr(rule, key, clean[key])
    growth = clean["growth"] or (None, None, None)
    rule.growth_threshold_bp, rule.growth_rate_bp, rule.growth_min_last_year_fen = growth
    rule.tiers = [RebateTier(threshold_fen=t, rate_bp=r) for t, r in clean["tiers"]]
    rule.targets = [RebateTarget(kind=k, target_id=i) for k, i in clean["targets"]]
    rule.updated_at = now


def create_rule(*, staff, **fields):
    """A new rule (admin/finance), audited. Fields: name, period_kind, basis, scope
    (+ category_ids / sku_ids or sku_codes), applies_to (+ tier_ids / dealer_ids or
    dealer_codes), valid_from, valid_to, tiers [(threshold_fen, rate_bp)], growth
    (threshold_bp, rate_bp, min_last_year_fen) or None, active. 422 `invalid_field`."""
    require(staff, "rebates.manage", "你没有配置返利规则的权限（仅管理员与财务）")
    with write_transaction() as session:
        clean = _clean_rule(session, **fields)
        now = utcnow()
        rule = RebateRule(created_at=now)
        _apply(rule, clean, now)
        session.add(rule)
        session.flush()
        audit.record(session, actor=staff, action="rebate_rule.create", entity_type="rebate_rule", entity_id=rule.id,
                     label=rule.name, after=_audit_view(rule))
    return rule


def update_rule(*, staff, rule_id, **fields):
    """Change a rule (admin/finance), audited with the values before and after. Documents
    already computed keep what they copied; the next close of a period uses the new rule."""
    require(staff, "rebates.manage", "你没有配置返利规则的权限（仅管理员与财务）")
    with write_transaction() as session:
        rule = session.execute(
            select(RebateRule).where(RebateRule.id == rule_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if rule is None:
            raise NotFound("返利规则不存在", "rebate_rule_not_found")
        clean = _clean_rule(session, **fields)
        before = _audit_view(rule)
        # The old tiers and targets go first: a kept threshold would collide with its replacement.
        rule.tiers.clear()
        rule.targets.clear()
        session.flush()
        _apply(rule, clean, utcnow())
        session.flush()
        old, new = audit.changed(before, _audit_view(rule))
        audit.record(session, actor=staff, action="rebate_rule.update", entity_type="rebate_rule", entity_id=rule.id,
                     label=rule.name, before=old, after=new)
    return rule


def list_rules():
    return db.session.execute(
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .order_by(RebateRule.active.desc(), RebateRule.id)
    ).scalars().all()


def get_rule(rule_id):
    rule = db.session.execute(
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .where(RebateRule.id == rule_id)
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound("返利规则不存在", "rebate_rule_not_found")
    return rule


def rule_form_values(rule):
    """A rule as its console form shows it (amounts in yuan, rates in %)."""
    def yuan(fen):
        return f"{fen // 100}" if fen % 100 == 0 else f"{fen // 100}.{fen % 100:02d}"

    def pct(bp):
        return f"{bp // 100}" if bp % 100 == 0 else f"{Decimal(bp) / 100:f}"

    values = {
        "name": rule.name, "period_kind": rule.period_kind, "basis": rule.basis, "scope": rule.scope,
        "applies_to": rule.applies_to, "valid_from": rule.valid_from.isoformat(),
        "valid_to": rule.valid_to.isoformat() if rule.valid_to else "", "active": rule.active,
        "category_ids": [str(i) for i in rule.target_ids("category")],
        "tier_ids": [str(i) for i in rule.target_ids("tier")],
        "sku_codes": " ".join(db.session.execute(
            select(Sku.code).where(Sku.id.in_(rule.target_ids("sku"))).order_by(Sku.code)).scalars()),
        "dealer_codes": " ".join(db.session.execute(
            select(Dealer.code).where(Dealer.id.in_(rule.target_ids("dealer"))).order_by(Dealer.code)).scalars()),
    }
    for n, tier in enumerate(sorted(rule.tiers, key=lambda t: t.threshold_fen), start=1):
        values[f"tier_threshold_{n}"], values[f"tier_rate_{n}"] = yuan(tier.threshold_fen), pct(tier.rate_bp)
    if rule.growth_rate_bp is not None:
        values.update(growth_threshold=pct(rule.growth_threshold_bp or 0), growth_rate=pct(rule.growth_rate_bp),
                      growth_min_last_year=yuan(rule.growth_min_last_year_fen or 0))
    return values


def describe_rule(rule):
    """One line in Chinese: period, basis, tiers, growth."""
    tiers = "；".join(f"满 {format_yuan(t.threshold_fen)} 返 {t.rate_bp / 100:g}%"
                     for t in sorted(rule.tiers, key=lambda t: t.threshold_fen))
    text_ = f"{PERIOD_LABELS[rule.period_kind]}·按{BASIS_LABELS[rule.basis]}：{tiers}（达到的最高一档比例适用于全部金额）"
    if rule.growth_rate_bp is not None:
        text_ += (f"；同比增长 ≥ {(rule.growth_threshold_bp or 0) / 100:g}% 另返 {rule.growth_rate_bp / 100:g}%"
                  f"（去年同期不少于 {format_yuan(rule.growth_min_last_year_fen or 0)}）")
    return text_


# --- documents: staff ---------------------------------------------------------------------------

def list_documents(*, staff, status=None, period=None, q=None, page=1):
    """One page of rebate documents, newest first: ([(document, dealer)], total)."""
    require(staff, "rebates.manage", "你没有查看返利单的权限（仅管理员与财务）")
    query = select(RebateDocument, Dealer).join(Dealer, Dealer.id == RebateDocument.dealer_id)
    if status:
        query = query.where(RebateDocument.status == status)
    if period:
        query = query.where(RebateDocument.period == parse_period(period).key)
    if q:
        like = f"%{q}%"
        query = query.where(or_(Dealer.code.ilike(like), Dealer.name.ilike(like), RebateDocument.rule_name.ilike(like)))
    total = db.session.execute(query.with_only_columns(func.count(), maintain_column_froms=True)).scalar_one()
    rows = db.session.execute(
        query.order_by(RebateDocument.id.desc()).limit(STAFF_PAGE_SIZE).offset((page - 1) * STAFF_PAGE_SIZE)
    ).all()
    return rows, total


def get_document_for_staff(*, staff, document_id):
    require(staff, "rebates.manage", "你没有查看返利单的权限（仅管理员与财务）")
    doc = db.session.execute(
        select(RebateDocument).options(selectinload(RebateDocument.lines), selectinload(RebateDocument.dealer))
        .where(RebateDocument.id == document_id)
    ).scalar_one_or_none()
    if doc is None:
        raise NotFound("返利单不存在", "rebate_document_not_found")
    return doc


def credit_entry(document_id):
    """The ledger entry that credited an approved document (None otherwise)."""
    return db.session.execute(
        select(LedgerEntry).where(LedgerEntry.ref_type == "rebate", LedgerEntry.ref_id == document_id,
                                  LedgerEntry.amount_fen > 0)
    ).scalar_one_or_none()


# --- the dealer's view --------------------------------------------------------------------------

def get_dealer_document(*, dealer_id, document_id):
    """The dealer's own document with its lines; another dealer's id answers 404."""
    doc = db.session.execute(
        select(RebateDocument).options(selectinload(RebateDocument.lines))
        .where(RebateDocument.id == document_id, RebateDocument.dealer_id == dealer_id)
    ).scalar_one_or_none()
    if doc is None:
        raise NotFound("返利单不存在", "rebate_document_not_found")
    return doc


def _applicable_rules(dealer, today):
    rules = db.session.execute(
        select(RebateRule).options(selectinload(RebateRule.tiers), selectinload(RebateRule.targets))
        .where(RebateRule.active.is_(True), RebateRule.valid_from <= today,
               or_(RebateRule.valid_to.is_(None), RebateRule.valid_to >= today))
        .order_by(RebateRule.id)
    ).scalars().all()

    def applies(rule):
        if rule.applies_to == "tiers":
            return dealer.tier_id in rule.target_ids("tier")
        if rule.applies_to == "dealers":
            return dealer.id in rule.target_ids("dealer")
        return True

    return [rule for rule in rules if applies(rule)]


def progress_of(session, rule, dealer_id, today):
    """How the dealer stands in `rule`'s current period so far (to today, China time): amount,
    rate reached, and the next tier — how much more it takes and what the rebate would then be.
    Growth is judged against last year's whole period (what the close will compare with)."""
    spec = spec_of(session, rule)
    period = Period.containing(rule.period_kind, today)
    window = spec.window(period.start, min(period.end, today))
    amount = basis_totals(session, spec, *window, {dealer_id}).get(dealer_id, 0) if window else 0
    last_year = None
    if spec.growth_rate_bp is not None:
        full = spec.window(period.start, period.end) or (period.start, period.end)
        last_year = basis_totals(session, spec, _year_earlier(full[0]), _year_earlier(full[1]), {dealer_id}) \
            .get(dealer_id, 0)
    rates = rates_for(spec, amount, last_year)
    upcoming = next(((t, r) for t, r in spec.tiers if t > amount or amount <= 0), None)
    next_tier = None
    if upcoming is not None:
        threshold, rate = upcoming
        at_threshold = rates_for(spec, max(threshold, 1), last_year)
        next_tier = {"threshold_fen": threshold, "rate_bp": rate, "gap_fen": max(threshold - amount, 0),
                     "estimated_rebate_fen": rebate_fen(max(threshold, 1), at_threshold.rate_bp)}
    return {
        "period": period.key, "period_label": period.label, "period_end": period.end,
        "rule": {"id": rule.id, "name": rule.name, "basis": rule.basis, "description": describe_rule(rule)},
        "amount_fen": amount, "current_rate_bp": rates.rate_bp, "tier_rate_bp": rates.tier_rate_bp,
        "growth_rate_bp": rates.growth_rate_bp, "last_year_amount_fen": last_year,
        "estimated_rebate_fen": rebate_fen(amount, rates.rate_bp), "next_tier": next_tier,
    }


def dealer_rebates(*, dealer_id, today=None):
    """What GET /api/mp/v1/rebates shows: the rebate balance, history (the dealer's documents
    and rebate-account movements, newest first) and progress in the current period of the
    first rule that applies to the dealer (`progress_all`: every applicable rule)."""
    today = today or business_today()
    dealer = db.session.get(Dealer, dealer_id)
    balance = ledger.get_balances(dealer_id)["rebate_fen"]
    documents = db.session.execute(
        select(RebateDocument).where(RebateDocument.dealer_id == dealer_id)
        .order_by(RebateDocument.id.desc()).limit(HISTORY_SIZE)
    ).scalars().all()
    movements, _ = ledger.list_entries(dealer_id=dealer_id, account="rebate", page=1, page_size=HISTORY_SIZE)
    progress_all = [progress_of(db.session, rule, dealer_id, today) for rule in _applicable_rules(dealer, today)]
    return {
        "balance_fen": balance,
        "history": {
            "documents": [document_summary(doc) for doc in documents],
            "movements": [{**m, "document_id": m["ref_id"] if m["ref_type"] == "rebate" else None} for m in movements],
        },
        "progress": progress_all[0] if progress_all else None,
        "progress_all": progress_all,
    }


def document_summary(doc):
    return {
        "id": doc.id, "period": doc.period, "period_label": parse_period(doc.period).label,
        "rule_name": doc.rule_name, "basis": doc.basis, "basis_label": BASIS_LABELS[doc.basis],
        "basis_amount_fen": doc.basis_amount_fen, "last_year_amount_fen": doc.last_year_amount_fen,
        "tier_rate_bp": doc.tier_rate_bp, "growth_rate_bp": doc.growth_rate_bp, "rate_bp": doc.rate_bp,
        "rebate_fen": doc.rebate_fen, "status": doc.status, "status_label": DOCUMENT_STATUS_LABELS[doc.status],
        "decided_at": doc.decided_at, "created_at": doc.created_at,
    }

