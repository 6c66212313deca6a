"""Rebate computation (返利计算): what a rule earns a dealer in a period.

A rule counts only the days of a period (`app.rebates.periods`) inside its validity (the
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
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import false, func, or_, select, type_coerce, union_all

from app.catalog.models import Category, Sku
from app.dealers.models import Dealer
from app.funds.models import Payment
from app.kernel.clock import business_day_start
from app.kernel.money import BP_PER_UNIT, apply_bp
from app.models_base import UTCDateTime
from app.orders.models import Order, OrderLine, Shipment, ShipmentLine
from app.rebates.periods import year_earlier
from app.returns.models import ReturnLine, ReturnRequest

UNPAID_STATUSES = ("cancelled", "rejected")


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
        last_year = basis_totals(session, spec, year_earlier(window[0]), year_earlier(window[1]), set(lines))
    result = {}
    for dealer_id, rows in lines.items():
        amount = sum(line["amount_fen"] for line in rows)
        last = last_year.get(dealer_id, 0) if spec.growth_rate_bp is not None else None
        rates = rates_for(spec, amount, last)
        result[dealer_id] = Computation(dealer_id, window, amount, last, rates, rebate_fen(amount, rates.rate_bp), rows)
    return result
