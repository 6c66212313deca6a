"""Finance and rebate documents (返利单): the list, one document, approving and rejecting.

Approving credits the dealer's rebate account once (`app.funds.ledger`, ref_type "rebate"):
the dealer's account row is locked first, then the document, whose status is checked again;
a unique index on rebate credits backs it.
"""
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.funds import ledger
from app.funds.models import LedgerEntry
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.inputs import text
from app.kernel.permissions import require
from app.rebates.models import DOCUMENT_STATUS_LABELS, RebateDocument
from app.rebates.periods import parse_period

STAFF_PAGE_SIZE = 50


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


# --- the list and one document --------------------------------------------------------------

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
