"""Closing a rebate period (返利结算).

Closing (`close_period`) writes one draft document per (rule, dealer, period) with a
positive rebate, its contributing shipments/orders/returns as lines. Closing again
recomputes drafts (a draft that no longer earns anything is deleted) and leaves approved
and rejected documents as they are, so it never duplicates. `close_due_periods` is the
daily job (`app/jobs.py`). Approving a draft is `app.rebates.documents`.

A rule is closed in one transaction, but computed `CLOSE_BATCH` dealers at a time (their lines
read, their documents written and flushed, then let go of), so closing a quarter for a
brand's 5,000 dealers takes the memory of 500 dealers' lines, not of the whole quarter.
"""
from collections import Counter
from types import SimpleNamespace

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.dealers.models import Dealer
from app.database import dialect_insert, write_transaction
from app.extensions import db
from app.kernel.clock import business_today, utcnow
from app.kernel.errors import DomainError
from app.kernel.permissions import require
from app.rebates.computation import compute, spec_of
from app.rebates.models import PERIOD_KINDS, RebateClose, RebateDocument, RebateDocumentLine, RebateRule
from app.rebates.periods import Period, parse_period

SYSTEM = SimpleNamespace(id=None, name="系统（返利结算）")
CLOSE_BATCH = 500


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
        spec = spec_of(session, rule)
        documented = set(session.execute(select(RebateDocument.dealer_id).where(
            RebateDocument.rule_id == rule_id, RebateDocument.period == period.key)).scalars())
        candidates = (set(session.execute(select(Dealer.id)).scalars()) if spec.dealer_ids is None
                      else set(spec.dealer_ids)) | documented
        ordered = sorted(candidates)
        counts = Counter()
        for start in range(0, len(ordered), CLOSE_BATCH):
            batch = ordered[start:start + CLOSE_BATCH]
            touched = _close_batch(session, rule, spec, period, batch, now, counts)
            session.flush()
            for doc in touched:
                session.expunge(doc)
        close.closed_at, close.closed_by, close.runs = now, actor.name[:64], close.runs + 1
        summary = {"rule_id": rule_id, "name": rule.name, **{k: counts[k] for k in
                                                              ("created", "recomputed", "removed", "final")}}
        audit.record(session, actor=actor, action="rebate.close", entity_type="rebate_rule", entity_id=rule_id,
                     label=f"{rule.name} · {period.label}", after={"period": period.key, **summary})
    return summary


def _close_batch(session, rule, spec, period, dealer_ids, now, counts):
    """Compute and write the documents of `dealer_ids` (one batch of a rule's close); returns
    the documents it holds, for the caller to flush and let go of."""
    computed = compute(session, spec, period, dealer_ids=dealer_ids)
    existing = {doc.dealer_id: doc for doc in session.execute(
        select(RebateDocument).options(selectinload(RebateDocument.lines))
        .where(RebateDocument.rule_id == rule.id, RebateDocument.period == period.key,
               RebateDocument.dealer_id.in_(dealer_ids))
        .with_for_update().execution_options(populate_existing=True)
    ).scalars()}
    touched = []
    for dealer_id in sorted(set(computed) | set(existing)):
        result, doc = computed.get(dealer_id), existing.get(dealer_id)
        if doc is not None and doc.status != "draft":
            counts["final"] += 1
            touched.append(doc)
            continue
        if result is None or result.rebate_fen <= 0:
            if doc is not None:
                session.delete(doc)
                counts["removed"] += 1
            continue
        if doc is None:
            doc = RebateDocument(rule_id=rule.id, dealer_id=dealer_id, period=period.key, status="draft",
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
        touched.append(doc)
    return touched


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
