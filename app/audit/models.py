from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import pk, timestamp


class AuditEntry(db.Model):
    """One change a staff member (or the system) made: who, when, what, before and after.

    Append-only: written by `app.audit.service.record` in the same transaction as the change,
    never updated or deleted.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_staff", "staff_id", "id"),
    )

    id: Mapped[int] = pk()
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(64))
    entity_label: Mapped[str] = mapped_column(String(128), default="")
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at = timestamp()
