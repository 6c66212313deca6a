from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, pk, timestamp

KIND_LABELS = {
    "image": "图片",
    "poster": "海报",
    "video": "短视频",
    "file": "文件",
    "article": "图文",
    "link": "链接",
    "miniprogram": "小程序卡片",
}
STATUS_LABELS = {"draft": "草稿", "published": "已发布", "withdrawn": "已撤回"}


class Material(db.Model):
    """One marketing material. What it carries depends on `kind`:

    - image / poster: the picture in `file_*` (JPEG/PNG/WebP);
    - video: an MP4 in `file_*`, and optionally a poster image staff uploaded in `cover_*`;
    - file: a document (PDF, Word, Excel, PowerPoint) in `file_*`, optional cover;
    - article: sanitised HTML in `body_html`, optional cover;
    - link: `link_url`, optional cover;
    - miniprogram: `mp_appid` + `mp_path` + the title, and a cover image (required).

    `thumb_key` is a small JPEG made from the picture (image/poster) or the cover; none when
    there is neither. Who sees it: the `audience_targets` rows of owner_type "material".
    """

    __tablename__ = "materials"
    __table_args__ = (Index("ix_materials_status_published", "status", "published_at"),)

    id: Mapped[int] = pk()
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    body_html: Mapped[str | None] = mapped_column(Text)
    link_url: Mapped[str | None] = mapped_column(String(512))
    mp_appid: Mapped[str | None] = mapped_column(String(32))
    mp_path: Mapped[str | None] = mapped_column(String(256))
    file_key: Mapped[str | None] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(String(128))
    file_content_type: Mapped[str | None] = mapped_column(String(96))
    file_size: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    cover_key: Mapped[str | None] = mapped_column(String(128))
    thumb_key: Mapped[str | None] = mapped_column(String(128))
    thumb_width: Mapped[int | None] = mapped_column(Integer)
    thumb_height: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    created_at = timestamp()
    updated_at = timestamp()
    published_at = mapped_column(UTCDateTime)

    tag_rows = relationship("MaterialTag", lazy="selectin", cascade="all, delete-orphan",
                            order_by="MaterialTag.tag")

    @property
    def tags(self):
        return [row.tag for row in self.tag_rows]

    @property
    def kind_label(self):
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def status_label(self):
        return STATUS_LABELS.get(self.status, self.status)


class MaterialTag(db.Model):
    __tablename__ = "material_tags"
    __table_args__ = (Index("ix_material_tags_tag", "tag"),)

    material_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("materials.id", ondelete="CASCADE"),
                                             primary_key=True)
    tag: Mapped[str] = mapped_column(String(16), primary_key=True)


class MaterialShare(db.Model):
    """A dealer user asked for what to forward (POST /materials/<id>/share): one row each time."""

    __tablename__ = "material_shares"
    __table_args__ = (
        Index("ix_material_shares_material_dealer", "material_id", "dealer_id"),
        Index("ix_material_shares_dealer", "dealer_id", "id"),
    )

    id: Mapped[int] = pk()
    material_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("materials.id"))
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    created_at = timestamp()
