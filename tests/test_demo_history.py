"""`flask demo seed`'s past (devtools/demo_history.py): three China months replayed through the
services at their own moments, last month's statements and the closed rebate periods, with the
clock left as it was found. Runs on whatever day the suite runs (and at the awkward moments the
`clock` fixture is set to below)."""
import re

import pytest
from sqlalchemy import func, select

from app.dealers.models import Dealer
from app.extensions import db
from app.funds.models import LedgerEntry, OfflinePayment
from app.kernel import clock as kernel_clock
from app.kernel.clock import business_day_start, business_today, china_time, utcnow
from app.kernel.money import apply_bp
from app.orders.models import Order, OrderEvent
from app.rebates.models import RebateClose, RebateDocument
from app.rebates.periods import Period
from app.statements.models import Statement, StatementLine
from devtools.demo_history import PAST_ORDERS, history_months
from tests.helpers import HTML, console_login


def seed(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return result.output


def dealer(code):
    return db.session.execute(select(Dealer).where(Dealer.code == code)).scalar_one()


def past_orders(code=None, month=None):
    """Orders placed before today's China month (of `code`, in the month starting `month`)."""
    this_month = business_day_start(business_today().replace(day=1))
    query = select(Order).where(Order.created_at < this_month).order_by(Order.id)
    if code:
        query = query.where(Order.dealer_id == dealer(code).id)
    orders = db.session.execute(query).scalars().all()
    if month:
        start, end = business_day_start(month), business_day_start((month + _month()).replace(day=1))
        orders = [o for o in orders if start <= o.created_at < end]
    return orders


def _month():
    from datetime import timedelta

    return timedelta(days=32)


def test_the_past_months_went_through_the_services_at_their_own_moments(runner):
    seed(runner)
    months = history_months(business_today())
    orders = past_orders()
    assert len(orders) == len(PAST_ORDERS) * len(months)
    start = business_day_start(months[0])
    for order in orders:
        assert order.status == "completed"
        assert start < order.created_at < business_day_start(business_today().replace(day=1))
        assert order.order_no[2:10] == kernel_clock.china_text(order.created_at, "%Y%m%d")
        events = db.session.execute(select(OrderEvent).where(OrderEvent.order_id == order.id)
                                    .order_by(OrderEvent.id)).scalars().all()
        assert [e.to_status for e in events] == ["pending_approval", "approved", "shipped", "completed"]
        assert [e.created_at for e in events] == sorted(e.created_at for e in events)
        if order.payment_method == "offline":
            assert order.paid_fen == order.total_fen > 0
    confirmed = db.session.execute(select(OfflinePayment).where(OfflinePayment.status == "confirmed")).scalars().all()
    assert len(confirmed) == 2 * len(months) + len(months) - 1  # two orders a month, D002's repayments
    assert all(p.decided_at < business_day_start(business_today().replace(day=1)) for p in confirmed)
    # The dealers' ledgers replay: every entry's balance follows from the one before it.
    for code in ("D001", "D002", "D004"):
        balances = {}
        for entry in db.session.execute(select(LedgerEntry).where(LedgerEntry.dealer_id == dealer(code).id)
                                        .order_by(LedgerEntry.id)).scalars():
            balances[entry.account] = balances.get(entry.account, 0) + entry.amount_fen
            assert entry.balance_after_fen == balances[entry.account], (code, entry.id)


def test_last_month_has_a_statement_per_dealer_that_ties_out_with_its_orders(runner):
    seed(runner)
    last = history_months(business_today())[-1]
    statements = {s.dealer_code: s for s in db.session.execute(
        select(Statement).where(Statement.month == f"{last:%Y-%m}")).scalars()}
    active = db.session.execute(select(func.count()).select_from(Dealer).where(Dealer.status == "active")).scalar_one()
    assert len(statements) == active
    # D002 buys on credit and repays the month before's goods during the month after: last
    # month opens owing the month before's order, repays it and closes owing last month's.
    d002 = statements["D002"]
    before, this = past_orders("D002")[-2:]
    assert d002.opening_receivable_fen == before.total_fen
    assert d002.closing_receivable_fen == this.total_fen
    lines = db.session.execute(select(StatementLine).where(StatementLine.statement_id == d002.id)).scalars().all()
    receivable = [line for line in lines if line.account == "receivable"]
    assert d002.opening_receivable_fen + sum(line.amount_fen for line in receivable) == d002.closing_receivable_fen
    assert {line.category for line in receivable} == {"orders", "payments"}
    assert this.order_no in {line.order_no for line in receivable}
    # D001 pays every order by transfer: its statement shows the order charged and paid.
    d001 = statements["D001"]
    (order,) = past_orders("D001", last)
    d001_lines = db.session.execute(select(StatementLine).where(StatementLine.statement_id == d001.id)).scalars().all()
    assert {line.order_no for line in d001_lines} == {order.order_no}
    assert d001.closing_receivable_fen == 0 and d001.line_count == len(d001_lines) > 0


def test_last_month_s_rebate_period_is_closed_with_documents_that_match_the_orders(runner):
    seed(runner)
    last = history_months(business_today())[-1]
    key = Period.containing("month", last).key
    assert db.session.execute(select(RebateClose).where(RebateClose.period == key,
                                                        RebateClose.closed_at.is_not(None))).scalar_one()
    docs = {d.dealer_id: d for d in db.session.execute(select(RebateDocument).where(RebateDocument.period == key))
            .scalars()}
    assert set(docs) == {dealer("D001").id, dealer("D004").id}  # the gold dealers paying by transfer
    for code in ("D001", "D004"):
        doc = docs[dealer(code).id]
        (order,) = past_orders(code, last)
        goods = sum(line.amount_fen for line in order.lines)  # every line is soy sauce or vinegar
        assert doc.basis_amount_fen == goods >= 20_000_00
        assert doc.rebate_fen == apply_bp(goods, doc.rate_bp) and doc.rate_bp == 100
        assert sum(line.amount_fen for line in doc.lines) == goods
    approved = [d for d in docs.values() if d.status == "approved"]
    assert len(approved) == 1 and [d.status for d in docs.values()].count("draft") == 1
    credit = db.session.execute(select(LedgerEntry).where(LedgerEntry.ref_type == "rebate",
                                                          LedgerEntry.ref_id == approved[0].id)).scalar_one()
    assert credit.amount_fen == approved[0].rebate_fen and credit.account == "rebate"


@pytest.mark.parametrize("moment", [china_time(2027, 1, 1, 0, 30), china_time(2028, 2, 29, 23, 30),
                                    china_time(2026, 3, 31, 23, 59)])
def test_the_seed_works_on_awkward_days_and_leaves_the_clock_as_it_found_it(runner, clock, moment):
    clock.set(moment)
    seed(runner)
    assert kernel_clock._source is clock and utcnow() == moment
    months = history_months(business_today())
    assert len(past_orders()) == len(PAST_ORDERS) * len(months)
    assert db.session.execute(select(func.count()).select_from(Statement)
                              .where(Statement.month == f"{months[-1]:%Y-%m}")).scalar_one() > 0
    closed = set(db.session.execute(select(RebateClose.period)).scalars())
    assert Period.containing("month", months[-1]).key in closed
    assert Period.containing("quarter", business_today()).previous().key in closed
    assert all(o.created_at <= moment for o in db.session.execute(select(Order)).scalars())


def test_the_seed_leaves_the_wall_clock_in_place(runner):
    seed(runner)
    assert kernel_clock._source is None


def test_the_console_s_statement_and_rebate_pages_show_the_past(runner, client):
    output = seed(runner)
    password = re.search(r"^\s*caiwu\s+\S+\s+(\S+)\s*$", output, re.M).group(1)
    assert console_login(client, "caiwu", password).status_code == 302
    last = f"{history_months(business_today())[-1]:%Y-%m}"
    page = client.get("/console/statements", headers=HTML).get_data(as_text=True)
    assert last in page and "上海沪联食品贸易有限公司" in page
    statement = db.session.execute(select(Statement).where(Statement.dealer_code == "D002")).scalar_one()
    detail = client.get(f"/console/statements/{statement.id}", headers=HTML)
    assert detail.status_code == 200 and past_orders("D002")[-1].order_no in detail.get_data(as_text=True)
    rebates = client.get("/console/rebates", headers=HTML).get_data(as_text=True)
    assert "金牌经销商调味品月度回款返利" in rebates and "杭州禾丰副食品有限公司" in rebates
