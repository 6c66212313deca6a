"""Rebates: rules at their tier boundaries, per scope, basis, growth and applicability; period
parsing; closing a period (idempotent, re-close recomputes drafts); approval credits the
rebate account exactly once; what the dealer sees in the mini-program."""
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.catalog.models import Category
from app.extensions import db
from app.funds import ledger
from app.funds.models import LedgerEntry
from app.kernel.clock import business_today
from app.kernel.errors import DomainError
from app.notify.models import DealerMessage
from app.rebates import closing, computation, dealer_view, periods
from app.rebates.documents import approve_document, reject_document
from app.rebates.models import RebateClose, RebateDocument, RebateDocumentLine
from app.rebates.rules import create_rule, list_rules, update_rule
from tests.factories import add, auth, make_sku
from tests.helpers import MP
from tests.rebate_factories import china, order, pay, return_received, ship

Q4 = "2026Q4"
AFTER_Q4 = date(2027, 1, 5)
YUAN = 100


def make_rule(staff, **overrides):
    fields = {
        "name": "季度发货返利", "period_kind": "quarter", "basis": "shipped", "valid_from": date(2025, 1, 1),
        "tiers": [(100_000 * YUAN, 200), (300_000 * YUAN, 300)],
    }
    fields.update(overrides)
    return create_rule(staff=staff["finance"], **fields)


def close(period=Q4, today=AFTER_Q4, **kw):
    return closing.close_period(period=period, today=today, **kw)


def documents(rule=None):
    db.session.expire_all()
    query = select(RebateDocument).order_by(RebateDocument.id)
    if rule is not None:
        query = query.where(RebateDocument.rule_id == rule.id)
    return db.session.execute(query).scalars().all()


def doc_of(dealer, rule=None):
    found = [d for d in documents(rule) if d.dealer_id == dealer.id]
    assert len(found) <= 1
    return found[0] if found else None


def shipped(world, dealer, amount_fen, day="2026-11-10", sku=None, hour=10):
    """One order of `amount_fen` (one unit at that price) shipped on `day`."""
    at = china(day, hour)
    row = order(world, dealer, [(sku or world.cola, 1, amount_fen)], at=at)
    ship(world, row, None, at=at)
    db.session.commit()
    return row


def paid(world, dealer, amount_fen, day="2026-11-10", sku=None):
    at = china(day)
    row = order(world, dealer, [(sku or world.cola, 1, amount_fen)], at=at, status="approved")
    pay(row, amount_fen, at=at)
    db.session.commit()
    return row


# --- periods ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, start, end, key", [
    ("2026Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31), "2026Q4"),
    ("2026q1", "quarter", date(2026, 1, 1), date(2026, 3, 31), "2026Q1"),
    (" 2026-Q2 ", "quarter", date(2026, 4, 1), date(2026, 6, 30), "2026Q2"),
    ("2026-11", "month", date(2026, 11, 1), date(2026, 11, 30), "2026-11"),
    ("2026-2", "month", date(2026, 2, 1), date(2026, 2, 28), "2026-02"),
    ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29), "2024-02"),
    ("2026-12", "month", date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
    ("2026", "year", date(2026, 1, 1), date(2026, 12, 31), "2026"),
    ("２０２６Ｑ４", "quarter", date(2026, 10, 1), date(2026, 12, 31), "2026Q4"),
])
def test_periods_parse_to_china_calendar_periods(text, kind, start, end, key):
    period = periods.parse_period(text)
    assert (period.kind, period.start, period.end, period.key) == (kind, start, end, key)


@pytest.mark.parametrize("text", ["2026Q5", "2026Q0", "2026-13", "2026-00", "26Q4", "Q4", "2026/11", "2026-11-01",
                                  "", "abc", None, 2026, "1999", "2026 Q4"])
def test_bad_periods_are_refused_in_chinese(text):
    with pytest.raises(DomainError) as refused:
        periods.parse_period(text)
    assert refused.value.code == "invalid_period" and refused.value.status == 422
    assert "期间" in refused.value.message or "年份" in refused.value.message or "月份" in refused.value.message


def test_previous_periods_roll_over_years():
    assert periods.parse_period("2026Q1").previous().key == "2025Q4"
    assert periods.parse_period("2026-01").previous().key == "2025-12"
    assert periods.parse_period("2026").previous().key == "2025"


# --- tiers at their boundaries, per basis ------------------------------------------------------

BOUNDARIES = [
    # amount (fen), rate reached (bp), rebate (fen)
    (9_999_999, 0, 0),                # ¥99,999.99: no tier
    (10_000_000, 200, 200_000),       # ¥100,000.00: 2 % of all of it
    (29_999_999, 200, 600_000),       # ¥299,999.99 × 2 % = 599,999.98 → 600,000 (half up, once)
    (30_000_000, 300, 900_000),       # ¥300,000.00: 3 % of the whole amount, not just the slice above
    (30_000_049, 300, 900_001),       # 900,001.47 → 900,001
    (30_000_050, 300, 900_002),       # 900,001.50 → 900,002
]


@pytest.mark.parametrize("basis", ["shipped", "paid"])
@pytest.mark.parametrize("amount, rate_bp, rebate", BOUNDARIES)
def test_tier_boundaries(world, staff, basis, amount, rate_bp, rebate):
    rule = make_rule(staff, basis=basis)
    (shipped if basis == "shipped" else paid)(world, world.dealer_a, amount)

    close()

    doc = doc_of(world.dealer_a, rule)
    if rebate == 0:
        assert doc is None
        return
    assert (doc.basis_amount_fen, doc.tier_rate_bp, doc.rate_bp, doc.rebate_fen) == (amount, rate_bp, rate_bp, rebate)
    assert doc.status == "draft" and doc.period == Q4 and doc.basis == basis


def test_the_rebate_is_rounded_once_per_document_not_per_line(world, staff):
    """Three lines of 25 fen at 2 %: per line 0.5 → 1 each (3 fen); per document 1.5 → 2 fen."""
    rule = make_rule(staff, tiers=[(0, 200)])
    at = china("2026-11-03")
    row = order(world, world.dealer_a, [(world.cola, 1, 25), (world.soy, 1, 25), (world.vinegar, 1, 25)], at=at)
    ship(world, row, None, at=at)
    db.session.commit()

    close()

    doc = doc_of(world.dealer_a, rule)
    assert [line.amount_fen for line in doc.lines] == [25, 25, 25]
    assert doc.basis_amount_fen == sum(line.amount_fen for line in doc.lines) == 75
    assert doc.rebate_fen == 2


def test_shipped_basis_counts_shipments_in_the_china_period_less_returns_received_in_it(world, staff):
    rule = make_rule(staff)
    a = world.dealer_a
    before = shipped(world, a, 5_000_000, "2026-09-30", hour=23)       # Q3 (23:00 China = 15:00 UTC)
    first = shipped(world, a, 6_000_000, "2026-10-01", hour=0)         # 00:00 China: Q4 (16:00 UTC on 30 Sept)
    last = order(world, a, [(world.soy, 10, 600_000)], at=china("2026-12-20"))
    ship(world, last, {world.soy: 4}, at=china("2026-12-31", 23, 59, 59))  # Q4, only 4 of 10 shipped
    ship(world, last, {world.soy: 6}, at=china("2027-01-01", 0))            # Q1 2027
    return_received(first, world.cola, 1, at=china("2026-12-15"))            # −60,000 in Q4
    return_received(before, world.cola, 1, at=china("2027-01-02"))           # next quarter: not here
    db.session.commit()

    close()

    doc = doc_of(a, rule)
    # 60,000 + 4 × 6,000 − 60,000 = 24,000 yuan: below the first tier
    assert doc is None
    totals = computation.basis_totals(db.session, computation.spec_of(db.session, rule), date(2026, 10, 1), date(2026, 12, 31))
    assert totals == {a.id: 6_000_000 + 2_400_000 - 6_000_000}


def test_document_lines_are_the_contributing_shipments_and_returns(world, staff):
    rule = make_rule(staff)
    row = shipped(world, world.dealer_a, 12_000_000, "2026-10-08")
    ret = return_received(row, world.cola, 1, at=china("2026-11-20"))
    shipped(world, world.dealer_a, 10_000_000, "2026-11-21", sku=world.soy)
    db.session.commit()

    close()

    doc = doc_of(world.dealer_a, rule)
    assert [(line.source, line.order_no, line.sku_code, line.qty, line.amount_fen) for line in doc.lines] == [
        ("shipment", row.order_no, "SKU-COLA", 1, 12_000_000),
        ("return", row.order_no, "SKU-COLA", 1, -12_000_000),
        ("shipment", doc.lines[2].order_no, "SKU-SOY", 1, 10_000_000),
    ]
    assert doc.lines[1].ref_label == f"退货单 {ret.return_no}"
    assert doc.basis_amount_fen == 10_000_000 and doc.rebate_fen == 200_000


PAID_CASES = [
    # what happens to one order of ¥100,000, and whether it counts for 2026Q4
    ("paid in full in Q4", lambda row: pay(row, row.total_fen, at=china("2026-11-02")), True),
    ("paid in two parts, the last in Q4", lambda row: (pay(row, 4_000_000, at=china("2026-09-20")),
                                                      pay(row, 6_000_000, at=china("2026-10-02"))), True),
    ("paid in two parts, the last in Q1 2027", lambda row: (pay(row, 4_000_000, at=china("2026-11-20")),
                                                           pay(row, 6_000_000, at=china("2027-01-02"))), False),
    ("only part paid", lambda row: pay(row, 9_999_999, at=china("2026-11-02")), False),
    ("paid in Q3", lambda row: pay(row, row.total_fen, at=china("2026-09-30", 23)), False),
    ("paid, time only from created_at", lambda row: pay(row, row.total_fen, at=china("2026-12-31", 23),
                                                          paid_at_missing=True), True),
    ("paid then cancelled", lambda row: (pay(row, row.total_fen, at=china("2026-11-02")),
                                         setattr(row, "status", "cancelled")), False),
    # ¥30,000 of it was paid from the rebate balance at checkout: the rest settles it.
    ("rebate part-payment, the rest paid in Q4", lambda row: (setattr(row, "rebate_fen", 3_000_000),
                                                             pay(row, 7_000_000, at=china("2026-11-02"))), True),
    ("rebate part-payment, the rest only part paid", lambda row: (setattr(row, "rebate_fen", 3_000_000),
                                                                 pay(row, 6_999_999, at=china("2026-11-02"))), False),
]


@pytest.mark.parametrize("case, act, counts", PAID_CASES, ids=[c[0] for c in PAID_CASES])
def test_paid_basis_counts_orders_that_became_fully_paid_in_the_period(world, staff, case, act, counts):
    rule = make_rule(staff, basis="paid")
    row = order(world, world.dealer_a, [(world.cola, 1, 10_000_000)], at=china("2026-09-01"), status="approved")
    act(row)
    db.session.commit()

    close()

    doc = doc_of(world.dealer_a, rule)
    assert (doc is not None) == counts
    if counts:
        assert doc.basis_amount_fen == 10_000_000 and doc.rebate_fen == 200_000
        assert [(line.source, line.order_no) for line in doc.lines] == [("order", row.order_no)]


@pytest.mark.parametrize("method, rebate_fen, placed, counts", [
    ("prepaid", 0, "2026-11-02", True),        # paid from the prepaid balance when submitted
    ("prepaid", 0, "2026-09-30", False),       # ... in Q3
    ("offline", 10_000_000, "2026-11-02", True),  # wholly paid by rebate when submitted
    ("credit", 0, "2026-11-02", False),        # on credit: repaid against the receivable, never "paid"
])
def test_paid_basis_counts_orders_paid_in_full_at_submission(world, staff, method, rebate_fen, placed, counts):
    rule = make_rule(staff, basis="paid")
    row = order(world, world.dealer_a, [(world.cola, 1, 10_000_000)], at=china(placed), status="approved")
    row.payment_method, row.rebate_fen = method, rebate_fen
    row.paid_fen = 10_000_000 - rebate_fen if method == "prepaid" else 0
    db.session.commit()

    close()

    doc = doc_of(world.dealer_a, rule)
    assert (doc is not None) == counts
    if counts:
        assert doc.basis_amount_fen == 10_000_000 and doc.lines[0].order_no == row.order_no


def test_paid_basis_deducts_returns_of_paid_orders_only(world, staff):
    rule = make_rule(staff, basis="paid")
    paid_order = paid(world, world.dealer_a, 12_000_000, "2026-10-10")
    unpaid = order(world, world.dealer_a, [(world.soy, 10, 100_000)], at=china("2026-10-11"))
    ship(world, paid_order, None, at=china("2026-10-11"))
    ship(world, unpaid, None, at=china("2026-10-12"))
    return_received(paid_order, world.cola, 1, at=china("2026-12-01"))  # −120,000
    return_received(unpaid, world.soy, 5, at=china("2026-12-01"))       # not a paid order: ignored
    db.session.commit()

    close()

    assert doc_of(world.dealer_a, rule) is None  # 120,000 − 120,000 = 0


# --- scope ----------------------------------------------------------------------------------------

@pytest.fixture
def mixed_quarter(world):
    """Dealer A in Q4: ¥80,000 of cola (drinks), ¥30,000 of soy (sauces), ¥20,000 of tea (drinks)."""
    at = china("2026-11-11")
    row = order(world, world.dealer_a, [(world.cola, 8, 1_000_000), (world.soy, 3, 1_000_000),
                                        (world.tea, 2, 1_000_000)], at=at)
    ship(world, row, None, at=at)
    db.session.commit()
    return row


SCOPES = [
    # scope, targets (names of world attributes), amount counted, rebate
    ("all", {}, 13_000_000, 260_000),
    ("categories", {"category_ids": ["drinks"]}, 10_000_000, 200_000),
    ("categories", {"category_ids": ["sauces"]}, 3_000_000, 0),
    ("skus", {"sku_ids": ["cola", "soy"]}, 11_000_000, 220_000),
    ("skus", {"sku_ids": ["cola"]}, 8_000_000, 0),
]


@pytest.mark.parametrize("scope, targets, amount, rebate", SCOPES)
def test_scope_counts_only_goods_in_it(world, staff, mixed_quarter, scope, targets, amount, rebate):
    resolved = {key: [getattr(world, name).id for name in names] for key, names in targets.items()}
    rule = make_rule(staff, scope=scope, **resolved)
    spec = computation.spec_of(db.session, rule)
    assert computation.basis_totals(db.session, spec, date(2026, 10, 1), date(2026, 12, 31)) == {world.dealer_a.id: amount}

    close()

    doc = doc_of(world.dealer_a, rule)
    assert (doc.rebate_fen if doc else 0) == rebate


def test_a_category_scope_includes_its_sub_categories(world, staff):
    juice = add(Category(name="果汁", parent_id=world.drinks.id))
    orange = make_sku(juice, "SKU-OJ")
    rule = make_rule(staff, scope="categories", category_ids=[world.drinks.id])
    shipped(world, world.dealer_a, 10_000_000, sku=orange)

    close()

    assert doc_of(world.dealer_a, rule).rebate_fen == 200_000


# --- applicability ----------------------------------------------------------------------------------

APPLICABILITY = [
    ("all", {}, {"a", "b"}),
    ("tiers", {"tier_ids": ["gold"]}, {"a"}),
    ("tiers", {"tier_ids": ["silver"]}, {"b"}),
    ("tiers", {"tier_ids": ["gold", "silver"]}, {"a", "b"}),
    ("dealers", {"dealer_codes": ["DB01"]}, {"b"}),
]


@pytest.mark.parametrize("applies_to, targets, rebated", APPLICABILITY)
def test_rules_apply_to_tiers_or_named_dealers(world, staff, applies_to, targets, rebated):
    if "tier_ids" in targets:
        targets = {"tier_ids": [getattr(world, name).id for name in targets["tier_ids"]]}
    rule = make_rule(staff, applies_to=applies_to, **targets)
    shipped(world, world.dealer_a, 10_000_000)
    shipped(world, world.dealer_b, 10_000_000)

    close()

    got = {code for code, dealer in (("a", world.dealer_a), ("b", world.dealer_b)) if doc_of(dealer, rule)}
    assert got == rebated


def test_validity_limits_the_days_counted(world, staff):
    rule = make_rule(staff, valid_from=date(2026, 11, 1), valid_to=date(2026, 11, 30))
    shipped(world, world.dealer_a, 10_000_000, "2026-10-31")
    shipped(world, world.dealer_a, 9_000_000, "2026-11-30")
    shipped(world, world.dealer_a, 5_000_000, "2026-12-01")

    close()

    assert doc_of(world.dealer_a, rule) is None  # only ¥90,000 inside the validity
    expired = make_rule(staff, name="已过期", valid_from=date(2025, 1, 1), valid_to=date(2026, 9, 30))
    close()
    assert doc_of(world.dealer_a, expired) is None


# --- growth -------------------------------------------------------------------------------------

GROWTH = [
    # last year's Q4, this Q4, growth rebate bp, total rebate
    (10_000_000, 12_000_000, 100, 360_000),   # +20 % exactly: 2 % + 1 % on ¥120,000
    (10_000_000, 11_999_999, 0, 240_000),     # +19.99999 %: no growth rebate (239,999.98 → 240,000)
    (4_999_999, 12_000_000, 0, 240_000),      # last year below the ¥50,000 minimum: a "new" dealer
    (5_000_000, 12_000_000, 100, 360_000),    # exactly the minimum
    (0, 12_000_000, 0, 240_000),              # nothing last year: no infinite growth
    (40_000_000, 48_000_000, 100, 1_920_000),  # 3 % tier + 1 %
]


@pytest.mark.parametrize("last_year, this_year, growth_bp, rebate", GROWTH)
def test_growth_rebate_against_the_same_period_last_year(world, staff, last_year, this_year, growth_bp, rebate):
    rule = make_rule(staff, growth=(2000, 100, 5_000_000))
    if last_year:
        shipped(world, world.dealer_a, last_year, "2025-11-10")
    shipped(world, world.dealer_a, this_year, "2026-11-10")

    close()

    doc = doc_of(world.dealer_a, rule)
    assert (doc.last_year_amount_fen, doc.growth_rate_bp, doc.rebate_fen) == (last_year, growth_bp, rebate)


def test_growth_alone_earns_the_growth_rate_below_the_first_tier(world, staff):
    rule = make_rule(staff, growth=(2000, 100, 5_000_000))
    shipped(world, world.dealer_a, 5_000_000, "2025-12-01")
    shipped(world, world.dealer_a, 6_000_000, "2026-12-01")

    close()

    doc = doc_of(world.dealer_a, rule)
    assert (doc.tier_rate_bp, doc.growth_rate_bp, doc.rebate_fen) == (0, 100, 60_000)


# --- closing --------------------------------------------------------------------------------------

# batch 1: every dealer in a batch of its own gives the same documents as one batch of all.
@pytest.mark.parametrize("batch", [500, 1])
def test_closing_twice_does_not_duplicate_and_a_reclose_recomputes_drafts(world, staff, batch, monkeypatch):
    monkeypatch.setattr(closing, "CLOSE_BATCH", batch)
    rule = make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000)
    shipped(world, world.dealer_b, 30_000_000)
    first = close()
    assert first["rules"] == [{"rule_id": rule.id, "name": rule.name, "created": 2, "recomputed": 0, "removed": 0,
                               "final": 0}]
    ids = [d.id for d in documents()]

    second = close()
    assert second["rules"][0]["recomputed"] == 2 and second["rules"][0]["created"] == 0
    assert [d.id for d in documents()] == ids
    assert db.session.execute(select(func.count()).select_from(RebateDocumentLine)).scalar_one() == 2

    # Late data: B's return pushes it down a tier, A's second shipment up one.
    b_order = db.session.execute(select(RebateDocumentLine.order_id).where(
        RebateDocumentLine.document_id == doc_of(world.dealer_b).id)).scalar_one()
    from app.orders.models import Order
    return_received(db.session.get(Order, b_order), world.cola, 1, at=china("2026-12-30"))
    shipped(world, world.dealer_a, 20_000_000, "2026-12-30")
    db.session.commit()
    close()

    a, b = doc_of(world.dealer_a), doc_of(world.dealer_b)
    assert (a.basis_amount_fen, a.rate_bp, a.rebate_fen, len(a.lines)) == (30_000_000, 300, 900_000, 2)
    assert b is None  # 300,000 − 300,000 = 0: the draft is removed
    assert db.session.execute(select(RebateClose.runs).where(RebateClose.rule_id == rule.id)).scalar_one() == 3


# batch 1: every dealer in a batch of its own gives the same documents as one batch of all.
@pytest.mark.parametrize("batch", [500, 1])
def test_a_reclose_leaves_approved_and_rejected_documents_as_they_are(world, staff, batch, monkeypatch):
    monkeypatch.setattr(closing, "CLOSE_BATCH", batch)
    make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000)
    shipped(world, world.dealer_b, 10_000_000)
    close()
    approve_document(staff=staff["finance"], document_id=doc_of(world.dealer_a).id)
    reject_document(staff=staff["finance"], document_id=doc_of(world.dealer_b).id, reason="资料不全")
    shipped(world, world.dealer_a, 30_000_000, "2026-12-01")

    result = close()

    assert result["rules"][0]["final"] == 2 and result["rules"][0]["created"] == 0
    a, b = doc_of(world.dealer_a), doc_of(world.dealer_b)
    assert (a.status, a.rebate_fen, b.status) == ("approved", 200_000, "rejected")
    assert ledger.get_balances(world.dealer_a.id)["rebate_fen"] == 200_000


def test_a_period_that_has_not_ended_cannot_be_closed(world, staff):
    make_rule(staff)
    with pytest.raises(DomainError) as refused:
        close(today=date(2026, 12, 31))
    assert refused.value.code == "period_not_ended" and refused.value.status == 409
    assert "尚未结束" in refused.value.message
    assert close(today=date(2027, 1, 1))["rules"]


def test_only_rules_of_the_periods_kind_are_closed(world, staff):
    quarterly = make_rule(staff)
    monthly = make_rule(staff, name="月度返利", period_kind="month", tiers=[(10_000_000, 100)])
    yearly = make_rule(staff, name="年度返利", period_kind="year", tiers=[(10_000_000, 50)])
    shipped(world, world.dealer_a, 10_000_000, "2026-11-10")

    assert [r["rule_id"] for r in close("2026-11")["rules"]] == [monthly.id]
    assert [r["rule_id"] for r in close("2026Q4")["rules"]] == [quarterly.id]
    assert [r["rule_id"] for r in close("2026")["rules"]] == [yearly.id]
    assert sorted((d.period, d.rebate_fen) for d in documents()) == [
        ("2026", 50_000), ("2026-11", 100_000), ("2026Q4", 200_000)]


def test_inactive_rules_are_not_closed(world, staff):
    rule = make_rule(staff, active=False)
    shipped(world, world.dealer_a, 10_000_000)
    assert close()["rules"] == []
    assert doc_of(world.dealer_a, rule) is None


def test_the_scheduled_job_closes_each_finished_period_once(world, staff):
    monthly = make_rule(staff, name="月度返利", period_kind="month", tiers=[(10_000_000, 100)])
    quarterly = make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000, "2026-12-05")

    assert closing.close_due_periods(today=date(2026, 12, 20)) == [
        {"period": "2026-11", "label": "2026年11月", "rules": [
            {"rule_id": monthly.id, "name": "月度返利", "created": 0, "recomputed": 0, "removed": 0, "final": 0}]},
        {"period": "2026Q3", "label": "2026年第3季度", "rules": [
            {"rule_id": quarterly.id, "name": quarterly.name, "created": 0, "recomputed": 0, "removed": 0,
             "final": 0}]},
    ]
    assert closing.close_due_periods(today=date(2026, 12, 21)) == []
    done = closing.close_due_periods(today=date(2027, 1, 1))
    assert [(d["period"], d["rules"][0]["created"]) for d in done] == [("2026-12", 1), ("2026Q4", 1)]
    assert closing.close_due_periods(today=date(2027, 1, 2)) == []
    assert sorted(d.period for d in documents()) == ["2026-12", "2026Q4"]


def test_the_rebates_close_job_is_a_periodic_job():
    from app import jobs

    dotted, interval, _timeout, queue = jobs.PERIODIC_JOBS["rebates-close"]
    assert jobs._import(dotted) is closing.close_due_periods and interval == jobs.DAY and queue == "low"


def test_cli_closes_a_period_and_refuses_a_bad_one(app, world, staff):
    make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000, "2025-11-10")
    runner = app.test_cli_runner()

    done = runner.invoke(args=["rebates", "close", "--period", "2025Q4"])
    again = runner.invoke(args=["rebates", "close", "--period", "2025Q4"])
    bad = runner.invoke(args=["rebates", "close", "--period", "2025Q5"])

    assert done.exit_code == 0 and "新生成 1 张" in done.output, done.output
    assert again.exit_code == 0 and "新生成 0 张，重新计算 1 张" in again.output
    assert bad.exit_code != 0 and "期间格式应为 2026-11（月）、2026Q4（季度）或 2026（年）" in bad.output
    assert len(documents()) == 1


# --- approving ----------------------------------------------------------------------------------

@pytest.fixture
def draft(world, staff):
    make_rule(staff)
    shipped(world, world.dealer_a, 12_345_678)
    close()
    return doc_of(world.dealer_a)


def test_approval_credits_the_rebate_account_once_and_tells_the_dealer(world, staff, draft):
    assert draft.rebate_fen == 246_914  # 123,456.78 × 2 % = 2,469.1356 → 2,469.14

    approved = approve_document(staff=staff["finance"], document_id=draft.id, reason="核对无误")

    assert approved.status == "approved" and approved.decided_by_name == "财务"
    [entry] = db.session.execute(select(LedgerEntry).where(LedgerEntry.ref_type == "rebate")).scalars().all()
    assert (entry.dealer_id, entry.account, entry.amount_fen, entry.balance_after_fen, entry.ref_id) == (
        world.dealer_a.id, "rebate", 246_914, 246_914, draft.id)
    assert ledger.get_balances(world.dealer_a.id)["rebate_fen"] == 246_914
    message = db.session.execute(select(DealerMessage).where(DealerMessage.ref_type == "rebate")).scalar_one()
    assert message.dealer_id == world.dealer_a.id and "¥2,469.14" in message.body
    assert db.session.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "rebate")).scalars().all() == [
        "rebate.approve"]

    with pytest.raises(DomainError) as again:
        approve_document(staff=staff["finance"], document_id=draft.id)
    assert again.value.code == "rebate_document_decided" and again.value.status == 409
    assert ledger.get_balances(world.dealer_a.id)["rebate_fen"] == 246_914


def test_a_subscribed_dealer_user_gets_a_subscribe_message_on_approval(app, world, staff, draft):
    from app.notify.dealer_alerts import record_consents
    from app.notify.models import Outbox

    app.config["WECHAT_SUBSCRIBE_TEMPLATES"] = {**app.config["WECHAT_SUBSCRIBE_TEMPLATES"],
                                                "rebate_approved": "tmpl-rebate"}
    record_consents(user=world.a_owner, template_ids=["tmpl-rebate"])

    approve_document(staff=staff["finance"], document_id=draft.id)

    row = db.session.execute(select(Outbox).where(Outbox.event == "rebate_approved")).scalar_one()
    assert row.recipient == world.a_owner.openid and row.ref_type == "rebate" and row.ref_id == draft.id
    assert row.payload["data"]["amount3"]["value"] == "2469.14元"
    assert row.payload["page"] == f"pages/rebate/detail?id={draft.id}"


def test_rejection_needs_a_reason_and_credits_nothing(world, staff, draft):
    with pytest.raises(DomainError) as no_reason:
        reject_document(staff=staff["finance"], document_id=draft.id, reason=" ")
    assert no_reason.value.status == 422
    reject_document(staff=staff["admin"], document_id=draft.id, reason="经销商有违规窜货")
    with pytest.raises(DomainError) as approve:
        approve_document(staff=staff["finance"], document_id=draft.id)
    assert approve.value.code == "rebate_document_decided"
    assert ledger.get_balances(world.dealer_a.id)["rebate_fen"] == 0


@pytest.mark.parametrize("role", ["rep", "warehouse", "marketing"])
def test_only_finance_and_admin_approve_configure_or_close(world, staff, draft, role):
    for call in (lambda: approve_document(staff=staff[role], document_id=draft.id),
                 lambda: make_rule({"finance": staff[role]}),
                 lambda: closing.close_period(period=Q4, staff=staff[role], today=AFTER_Q4)):
        with pytest.raises(DomainError) as refused:
            call()
        assert refused.value.status == 403
    assert documents()[0].status == "draft"


def test_an_unknown_document_answers_404(world, staff):
    with pytest.raises(DomainError) as missing:
        approve_document(staff=staff["finance"], document_id=999_999)
    assert missing.value.status == 404 and missing.value.code == "rebate_document_not_found"


@pytest.mark.postgres
def test_two_approvals_at_once_credit_once(pg_app, pg_world):
    from app.staff.service import create_staff

    finance = [create_staff(username=f"fin{i}", name=f"财务{i}", role="finance", password="correct-horse-9")
               for i in range(2)]
    create_rule(staff=finance[0], name="季度返利", period_kind="quarter", basis="shipped",
                        valid_from=date(2025, 1, 1), tiers=[(100_000 * YUAN, 200)])
    shipped(pg_world, pg_world.dealer_a, 10_000_000)
    close()
    doc_id = doc_of(pg_world.dealer_a).id
    db.session.remove()

    def approve(staff, barrier, results):
        with pg_app.app_context():
            barrier.wait()
            try:
                results.append(approve_document(staff=db.session.merge(staff), document_id=doc_id).status)
            except DomainError as exc:
                results.append(exc.code)
            finally:
                db.session.remove()

    for attempt in range(3):  # a few rounds: each must end with exactly one credit
        barrier = threading.Barrier(2)
        results = []
        threads = [threading.Thread(target=approve, args=(f, barrier, results)) for f in finance]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        credits = db.session.execute(select(LedgerEntry.amount_fen).where(
            LedgerEntry.ref_type == "rebate", LedgerEntry.ref_id == doc_id)).scalars().all()
        assert credits == [200_000]
        if attempt == 0:
            assert sorted(results) == ["approved", "rebate_document_decided"]
        else:
            assert results == ["rebate_document_decided"] * 2
        db.session.remove()
    assert ledger.get_balances(pg_world.dealer_a.id)["rebate_fen"] == 200_000


@pytest.mark.postgres
def test_two_closes_at_once_make_one_document_per_dealer(pg_app, pg_world):
    from app.staff.service import create_staff

    finance = create_staff(username="fin", name="财务", role="finance", password="correct-horse-9")
    create_rule(staff=finance, name="季度返利", period_kind="quarter", basis="shipped",
                        valid_from=date(2025, 1, 1), tiers=[(100_000 * YUAN, 200)])
    shipped(pg_world, pg_world.dealer_a, 10_000_000)
    shipped(pg_world, pg_world.dealer_b, 10_000_000)
    db.session.remove()
    barrier = threading.Barrier(3)
    errors = []

    def run():
        with pg_app.app_context():
            barrier.wait()
            try:
                close()
            except Exception as exc:  # asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(d.dealer_id for d in documents()) == sorted([pg_world.dealer_a.id, pg_world.dealer_b.id])
    assert db.session.execute(select(func.count()).select_from(RebateDocumentLine)).scalar_one() == 2


def test_the_database_refuses_a_second_credit_of_one_document(world, staff, draft):
    approve_document(staff=staff["finance"], document_id=draft.id)
    with pytest.raises(Exception) as refused:
        ledger.record_movements(dealer_id=world.dealer_a.id, actor=staff["finance"], actor_type="staff",
                                movements=[ledger.Movement("rebate", 100, "rebate", draft.id)])
    assert "unique" in str(refused.value).lower()
    db.session.rollback()
    assert ledger.get_balances(world.dealer_a.id)["rebate_fen"] == draft.rebate_fen


# --- rules: validation ------------------------------------------------------------------------------

BAD_RULES = [
    ({"name": " "}, "name"),
    ({"period_kind": "week"}, "period_kind"),
    ({"basis": "ordered"}, "basis"),
    ({"tiers": []}, "tiers"),
    ({"tiers": [(100, 0)]}, "tiers"),
    ({"tiers": [(100, 10_001)]}, "tiers"),
    ({"tiers": [(100, 200), (100, 300)]}, "tiers"),
    ({"tiers": [(100, 300), (200, 200)]}, "tiers"),
    ({"valid_from": date(2026, 2, 1), "valid_to": date(2026, 1, 1)}, "valid_to"),
    ({"scope": "categories"}, "category_ids"),
    ({"scope": "skus", "sku_codes": ["NOPE-1"]}, "sku_codes"),
    ({"applies_to": "dealers", "dealer_codes": ["D404"]}, "dealer_codes"),
    ({"applies_to": "tiers", "tier_ids": []}, "tier_ids"),
    ({"growth": (2000, 0, 100)}, "growth"),
    ({"growth": (2000, 100, 0)}, "growth"),
]


@pytest.mark.parametrize("change, field", BAD_RULES)
def test_a_bad_rule_is_refused_naming_the_field(world, staff, change, field):
    with pytest.raises(DomainError) as refused:
        make_rule(staff, **change)
    assert refused.value.status == 422 and refused.value.details["field"] == field
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)


def test_rule_changes_are_audited_and_documents_keep_what_they_copied(world, staff):
    rule = make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000, "2026-07-10")
    close("2026Q3", today=date(2026, 10, 1))
    update_rule(staff=staff["admin"], rule_id=rule.id, name="季度返利（新）", period_kind="quarter",
                        basis="shipped", valid_from=date(2025, 1, 1), tiers=[(100_000 * YUAN, 250)])

    doc = doc_of(world.dealer_a)
    assert (doc.rule_name, doc.rate_bp, doc.rebate_fen) == ("季度发货返利", 200, 200_000)
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "rebate_rule.update")).scalar_one()
    assert entry.before == {"name": "季度发货返利", "tiers": [[10_000_000, 200], [30_000_000, 300]]}
    assert entry.after == {"name": "季度返利（新）", "tiers": [[10_000_000, 250]]}


# --- the mini-program ---------------------------------------------------------------------------------

def test_dealer_sees_balance_history_and_progress_to_the_next_tier(client, world, staff):
    rule = make_rule(staff, name="本季度返利", valid_from=date(2020, 1, 1))
    today = business_today()
    shipped(world, world.dealer_a, 12_000_000, today.isoformat(), hour=0)
    shipped(world, world.dealer_a, 10_000_000, "2025-11-10")
    close("2025Q4", today=date(2026, 1, 2))
    approve_document(staff=staff["finance"], document_id=doc_of(world.dealer_a).id)

    body = client.get(f"{MP}/rebates", headers=auth(world.a_viewer)).get_json()

    assert body["balance_fen"] == 200_000
    progress = body["progress"]
    assert progress["period"] == periods.Period.containing("quarter", today).key
    assert progress["rule"]["id"] == rule.id
    assert (progress["amount_fen"], progress["current_rate_bp"], progress["estimated_rebate_fen"]) == (
        12_000_000, 200, 240_000)
    assert progress["next_tier"] == {"threshold_fen": 30_000_000, "rate_bp": 300, "gap_fen": 18_000_000,
                                     "estimated_rebate_fen": 900_000}
    [document] = body["history"]["documents"]
    assert (document["period"], document["rebate_fen"], document["status"], document["status_label"]) == (
        "2025Q4", 200_000, "approved", "已入账")
    [movement] = body["history"]["movements"]
    assert (movement["amount_fen"], movement["balance_after_fen"], movement["ref_type"], movement["document_id"]) == (
        200_000, 200_000, "rebate", document["id"])

    detail = client.get(f"{MP}/rebates/{document['id']}", headers=auth(world.a_buyer)).get_json()
    assert [(line["source"], line["amount_fen"]) for line in detail["lines"]] == [("shipment", 10_000_000)]


def test_a_dealer_at_the_top_tier_has_no_next_tier_and_one_without_rules_no_progress(client, world, staff):
    make_rule(staff, applies_to="dealers", dealer_codes=["DA01"], valid_from=date(2020, 1, 1))
    shipped(world, world.dealer_a, 30_000_000, business_today().isoformat(), hour=0)

    a = client.get(f"{MP}/rebates", headers=auth(world.a_owner)).get_json()
    b = client.get(f"{MP}/rebates", headers=auth(world.b_owner)).get_json()

    assert a["progress"]["current_rate_bp"] == 300 and a["progress"]["next_tier"] is None
    assert b == {"balance_fen": 0, "history": {"documents": [], "movements": []}, "progress": None,
                 "progress_all": []}


def test_another_dealers_rebate_document_answers_404_like_a_missing_one(client, world, staff, draft):
    foreign = client.get(f"{MP}/rebates/{draft.id}", headers=auth(world.b_owner))
    missing = client.get(f"{MP}/rebates/999999", headers=auth(world.b_owner))
    own = client.get(f"{MP}/rebates/{draft.id}", headers=auth(world.a_owner))

    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json() == missing.get_json()
    assert foreign.get_json()["error"]["code"] == "rebate_document_not_found"
    assert own.status_code == 200 and own.get_json()["status"] == "draft"
    b = client.get(f"{MP}/rebates", headers=auth(world.b_owner)).get_json()
    assert b["history"]["documents"] == []


# --- end to end through the real services ------------------------------------------------------------

def test_orders_shipped_and_returned_through_the_services_earn_their_rebate(client, world, staff):
    from app.orders import approval as orders
    from app.orders import queries
    from app.orders.shipments import ship_order
    from app.returns import service as returns
    from tests.helpers import submit

    rule = make_rule(staff, period_kind="month", tiers=[(100 * YUAN, 500)], valid_from=date(2020, 1, 1))
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 10}])
    assert r.status_code == 201, r.get_json()
    order_no = r.get_json()["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    placed = queries.get_order(dealer_id=world.dealer_a.id, order_no=order_no)
    ship_order(staff=staff["warehouse"], order_no=order_no, quantities={placed.lines[0].id: 10}, carrier="顺丰速运",
               tracking_no="SF20261127")
    ret = returns.create_return(user=world.a_buyer, order_no=order_no, lines=[{"sku_id": world.cola.id, "qty": 2}],
                                reason="破损")
    returns.approve_return(staff=staff["admin"], return_id=ret.id)
    returns.receive_return(staff=staff["warehouse"], return_id=ret.id, warehouse_id=world.wh_south.id)

    month = periods.Period.containing("month", business_today())
    close(month, today=month.end + timedelta(days=1))

    doc = doc_of(world.dealer_a, rule)
    # dealer A's cola price is 4,000 fen: 10 shipped − 2 returned = 8 × ¥40 = ¥320 × 5 % = ¥16
    assert [(line.source, line.qty, line.amount_fen) for line in doc.lines] == [
        ("shipment", 10, 40_000), ("return", 2, -8_000)]
    assert (doc.basis_amount_fen, doc.rebate_fen) == (32_000, 1_600)
    approve_document(staff=staff["finance"], document_id=doc.id)
    assert client.get(f"{MP}/account", headers=auth(world.a_buyer)).get_json()["accounts"]["rebate_fen"] == 1_600


def test_unbound_users_are_refused_and_viewers_may_read_a_document(client, world, staff, draft):
    from app.dealers.identity import issue_token

    unbound = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for path in ("/rebates", f"/rebates/{draft.id}"):
        r = client.get(MP + path, headers=unbound)
        assert (r.status_code, r.get_json()["error"]["code"]) == (403, "not_bound")
    r = client.get(f"{MP}/rebates/{draft.id}", headers=auth(world.a_viewer))
    assert r.status_code == 200 and r.get_json()["rebate_fen"] == draft.rebate_fen


def test_demo_data_has_two_rebate_rules_the_dealers_see_progress_against(app, runner):
    from app.dealers.models import Dealer

    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    rules = list_rules()
    assert [(r.name, r.period_kind, r.basis, r.scope, r.applies_to) for r in rules] == [
        ("季度发货返利", "quarter", "shipped", "all", "all"),
        ("金牌经销商调味品月度回款返利", "month", "paid", "categories", "tiers"),
    ]
    gold = db.session.execute(select(Dealer).where(Dealer.code == "D001")).scalar_one()
    seen = dealer_view.dealer_rebates(dealer_id=gold.id)
    assert gold.tier.code == "gold"
    assert [p["rule"]["name"] for p in seen["progress_all"]] == [r.name for r in rules]
    progress = seen["progress"]  # D001's completed demo order was shipped this quarter
    assert progress["amount_fen"] > 0
    assert progress["next_tier"]["threshold_fen"] == 100_000_00
    assert progress["next_tier"]["gap_fen"] == 100_000_00 - progress["amount_fen"]


@pytest.mark.postgres
@pytest.mark.parametrize("basis, expected", [
    # shipped: 120,000 + 50,000 (Q4 shipments) − 20,000 (return received in Q4)
    ("shipped", 15_000_000),
    # paid: the first order (paid in two parts, the last in Q4) − its return; the second is only part paid
    ("paid", 10_000_000),
])
def test_basis_amounts_on_postgresql(pg_app, pg_world, basis, expected):
    from app.staff.service import create_staff

    w = pg_world
    finance = create_staff(username="fin", name="财务", role="finance", password="correct-horse-9")
    rule = create_rule(staff=finance, name="季度返利", period_kind="quarter", basis=basis,
                               valid_from=date(2025, 1, 1), tiers=[(100_000 * YUAN, 200)])
    first = order(w, w.dealer_a, [(w.cola, 6, 2_000_000)], at=china("2026-09-20"), status="approved")
    ship(w, first, None, at=china("2026-10-01", 0))
    pay(first, 5_000_000, at=china("2026-09-30", 23))
    pay(first, 7_000_000, at=china("2026-12-31", 23, 59))
    return_received(first, w.cola, 1, at=china("2026-11-11"))
    second = order(w, w.dealer_a, [(w.soy, 5, 1_000_000)], at=china("2026-10-20"), status="approved")
    ship(w, second, None, at=china("2026-10-21"))
    pay(second, 4_999_999, at=china("2026-10-22"))
    db.session.commit()

    assert computation.basis_totals(db.session, computation.spec_of(db.session, rule), date(2026, 10, 1),
                                date(2026, 12, 31)) == {w.dealer_a.id: expected}
    close()
    assert doc_of(w.dealer_a).basis_amount_fen == expected
