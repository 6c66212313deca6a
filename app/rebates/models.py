"""Rebates (返利): rules finance configures, and the documents a period close computes from them.

A `RebateRule` says for which period kind (month, quarter, year), on what basis (shipped or
paid goods amount), over which goods (all, categories, SKUs) and for which dealers (all,
tiers, named dealers) volume tiers pay a rate in basis points, plus an optional growth
rebate against the same period last year. Closing a period writes one `RebateDocument`
per (rule, dealer, period) with its contributing lines; finance approves it, which credits
the dealer's rebate account through the ledger (see `app.rebates.documents`).
"""
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

PERIOD_KINDS = ("month", "quarter", "year")
PERIOD_LABELS = {"month": "月度", "quarter": "季度", "year": "年度"}
BASES = ("shipped", "paid")
BASIS_LABELS = {"shipped": "发货金额", "paid": "回款金额（已付清订单的货款）"}
SCOPES = ("all", "categories", "skus")
SCOPE_LABELS = {"all": "全部商品", "categories": "指定分类", "skus": "指定商品"}
APPLIES = ("all", "tiers", "dealers")
APPLIES_LABELS = {"all": "全部经销商", "tiers": "指定等级", "dealers": "指定经销商"}
# What a `RebateTarget` names: goods in scope (category, sku) or dealers it applies to (tier, dealer).
TARGET_KINDS = ("category", "sku", "tier", "dealer")

DOCUMENT_STATUSES = ("draft", "approved", "rejected")
DOCUMENT_STATUS_LABELS = {"draft": "待审核", "approved": "已入账", "rejected": "已驳回"}
LINE_SOURCES = ("shipment", "order", "return")
LINE_SOURCE_LABELS = {"shipment": "发货", "order": "已付清订单", "return": "退货入库"}


class RebateRule(db.Model):
    __tablename__ = "rebate_rules"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity_ordered"),
        CheckConstraint("growth_threshold_bp IS NULL OR growth_threshold_bp >= 0", name="growth_threshold_nonnegative"),
        CheckConstraint("growth_rate_bp IS NULL OR growth_rate_bp > 0", name="growth_rate_positive"),
        CheckConstraint("growth_min_last_year_fen IS NULL OR growth_min_last_year_fen > 0",
                        name="growth_minimum_positive"),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(64))
    period_kind: Mapped[str] = mapped_column(String(8))
    basis: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(String(12))
    applies_to: Mapped[str] = mapped_column(String(8))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    # Growth rebate: growth ≥ threshold (bp of last year's amount) adds rate_bp, when last
    # year's amount reached the minimum (so a new dealer's "infinite growth" earns nothing).
    growth_threshold_bp: Mapped[int | None] = mapped_column(Integer)
    growth_rate_bp: Mapped[int | None] = mapped_column(Integer)
    growth_min_last_year_fen: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at = timestamp()
    updated_at = timestamp()

    tiers = relationship("RebateTier", order_by="RebateTier.threshold_fen", cascade="all, delete-orphan")
    targets = relationship("RebateTarget", cascade="all, delete-orphan")

    @property
    def has_growth(self):
        return self.growth_rate_bp is not None

    def target_ids(self, kind):
        return sorted(t.target_id for t in self.targets if t.kind == kind)


class RebateTier(db.Model):
    """Reaching `threshold_fen` in the period earns `rate_bp` on the whole amount."""

    __tablename__ = "rebate_tiers"
    __table_args__ = (
        UniqueConstraint("rule_id", "threshold_fen"),
        CheckConstraint("threshold_fen >= 0", name="threshold_nonnegative"),
        CheckConstraint("rate_bp > 0 AND rate_bp <= 10000", name="rate_in_range"),
    )

    id: Mapped[int] = pk()
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rebate_rules.id"), index=True)
    threshold_fen: Mapped[int] = fen()
    rate_bp: Mapped[int] = mapped_column(Integer)


class RebateTarget(db.Model):
    """A category or SKU in a rule's scope, or a tier or dealer it applies to."""

    __tablename__ = "rebate_targets"

    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rebate_rules.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class RebateClose(db.Model):
    """A rule's period was closed (the row is also the lock two closes of it queue on)."""

    __tablename__ = "rebate_closes"
    __table_args__ = (UniqueConstraint("rule_id", "period"),)

    id: Mapped[int] = pk()
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rebate_rules.id"))
    period: Mapped[str] = mapped_column(String(8))
    closed_at = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RebateDocument(db.Model):
    """One dealer's rebate of one rule for one period: draft → approved (credited) | rejected.

    The rule's name and rates are copied in, so editing the rule later does not change a
    document; `rebate_fen = round_half_up(basis_amount_fen × rate_bp / 10000)`, once per
    document, and `basis_amount_fen` is exactly the sum of the lines.
    """

    __tablename__ = "rebate_documents"
    __table_args__ = (
        UniqueConstraint("rule_id", "dealer_id", "period"),
        Index("ix_rebate_documents_dealer", "dealer_id", "id"),
        Index("ix_rebate_documents_status", "status", "id"),
        CheckConstraint("rebate_fen > 0", name="rebate_positive"),
    )

    id: Mapped[int] = pk()
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rebate_rules.id"))
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    period: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    rule_name: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(8))
    basis_amount_fen: Mapped[int] = fen()
    last_year_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    tier_threshold_fen: Mapped[int] = fen()
    tier_rate_bp: Mapped[int] = mapped_column(Integer)
    growth_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    rate_bp: Mapped[int] = mapped_column(Integer)
    rebate_fen: Mapped[int] = fen()
    status: Mapped[str] = mapped_column(String(8), default="draft")
    decided_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    decided_by_name: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(String(200))
    computed_at = timestamp()
    created_at = timestamp()

    dealer = relationship("Dealer")
    lines = relationship("RebateDocumentLine", order_by="RebateDocumentLine.id", cascade="all, delete-orphan")


class RebateDocumentLine(db.Model):
    """What contributed to a document's amount: goods of a shipment, of a fully paid order,
    or (negative) of a return received back in the period."""

    __tablename__ = "rebate_document_lines"

    id: Mapped[int] = pk()
    document_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rebate_documents.id"), index=True)
    source: Mapped[str] = mapped_column(String(8))
    ref_id: Mapped[int] = mapped_column(BigInteger)
    ref_label: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"))
    order_no: Mapped[str] = mapped_column(String(20))
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"))
    sku_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = fen()
    amount_fen: Mapped[int] = fen()
    happened_at = mapped_column(UTCDateTime, nullable=False)
