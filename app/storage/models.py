from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import pk, timestamp


class Upload(db.Model):
    """A file a dealer user uploaded (a photo for a return request, ...).

    Belongs to the dealer: only that dealer's users can see it or attach it to anything.
    The bytes live in the storage backend under `storage_key`; the row says what they are.
    """

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_dealer", "dealer_id", "id"),)

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    uploaded_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    storage_key: Mapped[str] = mapped_column(String(128), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at = timestamp()
