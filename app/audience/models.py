from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import pk

# Who an item (a policy, a material, a campaign) is addressed to. `all`: every dealer;
# `tier`: a tier code; `region`: a region code (a province covers its cities); `dealer`: a dealer code.
AUDIENCE_SCOPES = ("all", "tier", "region", "dealer")


class AudienceTarget(db.Model):
    """One target of an item's audience; an item's rows together are its `Audience`
    (see `app.audience.service` for what they mean)."""

    __tablename__ = "audience_targets"
    __table_args__ = (
        UniqueConstraint("owner_type", "owner_id", "scope", "target", name="uq_audience_targets_owner_target"),
        Index("ix_audience_targets_scope_target", "scope", "target"),
    )

    id: Mapped[int] = pk()
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(32), default="")
