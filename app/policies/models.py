"""Policies (渠道政策 / 价格政策 / 促销通知) the brand publishes to dealers.

A `Policy` row is the working copy staff edit. Publishing snapshots it as a `PolicyVersion`
(1, 2, ...); dealers always see the latest version. Who a policy is addressed to lives in
`audience_targets` (owner_type "policy", see `app.audience.service`).

What dealers did with it:
- `PolicyDelivery`: one row per (policy, dealer) pushed at publish time (message list +
  subscribe message), carrying the last version pushed.
- `PolicyRead`: one row per (policy, dealer user) with the latest version that user opened.
  The mini-program's read flag and unread count are per user; the console counts a dealer
  as having read a version when any of its users opened it.
- `PolicyAck`: one row per (policy, dealer, version): acknowledgement binds the dealer, and
  a new version needs a new acknowledgement.
- `PolicyReminder`: each reminder sent to a straggling dealer (dedupes repeated presses).
"""
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, pk, timestamp

CATEGORY_LABELS = {"channel": "渠道政策", "price": "价格政策", "promotion": "促销通知"}
STATUS_LABELS = {"draft": "草稿", "scheduled": "待定时发布", "published": "已发布", "withdrawn": "已撤回"}


class Policy(db.Model):
    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_status_publish_at", "status", "publish_at"),)

    id: Mapped[int] = pk()
    title: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16))
    body_html: Mapped[str] = mapped_column(Text, default="")  # sanitised on save
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    ack_required: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # The latest published version (0 before the first publication).
    version: Mapped[int] = mapped_column(Integer, default=0)
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when scheduled
    first_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # of the latest version
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdraw_reason: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at = timestamp()
    updated_at = timestamp()

    versions = relationship("PolicyVersion", order_by="PolicyVersion.version.desc()", lazy="select", viewonly=True)


class PolicyVersion(db.Model):
    """What dealers saw as version `version`: a snapshot of the policy and what changed."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16))
    body_html: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    ack_required: Mapped[bool] = mapped_column(Boolean)
    # [{"id", "filename", "content_type", "size"}] of the attachments at that version.
    attachments: Mapped[list] = mapped_column(JSON)
    # Chinese sentences saying what changed from the previous version ([] for version 1).
    changes: Mapped[list] = mapped_column(JSON)
    published_at = timestamp()
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # None: the scheduler


class PolicyAttachment(db.Model):
    """A file attached to a policy (an image or a PDF), stored through `app.storage`.
    Removing it from the policy keeps the row and the file: older versions list it."""

    __tablename__ = "policy_attachments"

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(128), unique=True)
    filename: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()


class PolicyDelivery(db.Model):
    __tablename__ = "policy_deliveries"
    __table_args__ = (UniqueConstraint("policy_id", "dealer_id"),)

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    delivered_at = timestamp()


class PolicyRead(db.Model):
    __tablename__ = "policy_reads"
    __table_args__ = (UniqueConstraint("policy_id", "user_id"), Index("ix_policy_reads_policy_dealer", "policy_id", "dealer_id"))

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("dealer_users.id"))
    version: Mapped[int] = mapped_column(Integer)
    first_read_at = timestamp()
    read_at = timestamp()


class PolicyAck(db.Model):
    __tablename__ = "policy_acks"
    __table_args__ = (UniqueConstraint("policy_id", "dealer_id", "version"),)

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("dealer_users.id"))
    acked_at = timestamp()


class PolicyReminder(db.Model):
    __tablename__ = "policy_reminders"
    __table_args__ = (Index("ix_policy_reminders_policy_dealer", "policy_id", "dealer_id", "reminded_at"),)

    id: Mapped[int] = pk()
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    version: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    reminded_at = timestamp()
