"""What a dealer sees of rebates: its balance, documents and movements, and how it stands in
the current period of each rule that applies to it (GET /api/mp/v1/rebates)."""
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.dealers.models import Dealer
from app.extensions import db
from app.funds import ledger
from app.kernel.clock import business_today
from app.kernel.errors import NotFound
from app.rebates.computation import basis_totals, rates_for, rebate_fen, spec_of
from app.rebates.models import BASIS_LABELS, DOCUMENT_STATUS_LABELS, RebateDocument, RebateRule
from app.rebates.periods import Period, parse_period, year_earlier
from app.rebates.rules import describe_rule

HISTORY_SIZE = 20


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
        last_year = basis_totals(session, spec, year_earlier(full[0]), year_earlier(full[1]), {dealer_id}) \
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

