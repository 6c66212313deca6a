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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, pk, timestamp

DEALER_STATUSES = ("active", "suspended")
DEALER_STATUS_LABELS = {"active": "正常", "suspended": "暂停"}
USER_ROLES = ("owner", "buyer", "viewer")
ORDERING_ROLES = ("owner", "buyer")
ROLE_LABELS = {"owner": "负责人", "buyer": "采购员", "viewer": "只读"}


class Region(db.Model):
    """An administrative division by its GB/T 2260 code (e.g. 440000 广东省, 440300 深圳市)."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))


class Tier(db.Model):
    """Dealer grade (金牌/银牌/普通); price lists and visibility rules target tiers."""

    __tablename__ = "tiers"

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int] = mapped_column(Integer, default=0)


class Dealer(db.Model):
    """A dealer (经销商): who they are, who looks after them, and the terms of their contract.

    `payment_terms_days` is the 账期 (0: pay before shipment); the contract period and the
    annual purchase target (fen; None when not agreed) come from the signed contract.
    """

    __tablename__ = "dealers"
    __table_args__ = (
        CheckConstraint("payment_terms_days >= 0", name="payment_terms_nonnegative"),
        CheckConstraint("annual_target_fen >= 0", name="annual_target_nonnegative"),
        CheckConstraint("contract_end >= contract_start", name="contract_period_ordered"),
    )

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    contract_start: Mapped[date | None] = mapped_column(Date)
    contract_end: Mapped[date | None] = mapped_column(Date)
    annual_target_fen: Mapped[int | None] = mapped_column(BigInteger)
    created_at = timestamp()

    tier = relationship("Tier", lazy="joined")
    region = relationship("Region", lazy="joined")
    rep = relationship("Staff")


class DealerUser(db.Model):
    """A person acting for a dealer in the mini-program, bound to one WeChat openid."""

    __tablename__ = "dealer_users"

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = timestamp()

    dealer = relationship("Dealer", lazy="joined")


class InviteCode(db.Model):
    """Single-use, expiring code a dealer's new user types into the mini-program."""

    __tablename__ = "invite_codes"

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(16), unique=True)
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("dealer_users.id"))
    created_at = timestamp()


class Address(db.Model):
    __tablename__ = "addresses"
    __table_args__ = (Index("ix_addresses_dealer_default", "dealer_id", "is_default"),)

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    contact_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    detail: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at = timestamp()

    region = relationship("Region", lazy="joined")
