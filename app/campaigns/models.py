"""Customer groups (WeCom 客户群) and campaigns sent into them (企业群发 to groups).

A campaign's plan is frozen when it is sent: one `CampaignSender` per group owner (WeCom
only lets the owner send to a group, after confirming the task in the WeCom client) and
one `CampaignGroup` per group, including the groups left out (status `dropped`, with the
reason), so the console shows exactly what happened to every group.
"""
from datetime import datetime

from sqlalchemy import (
    BigInteger,
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

GROUP_STATUSES = ("active", "dismissed")
GROUP_STATUS_LABELS = {"active": "正常", "dismissed": "已解散/不可见"}
# groupchat/list `status`: the owner's follow-up state.
OWNER_STATUS_LABELS = {0: "群主在职", 1: "群主已离职", 2: "离职继承中", 3: "离职继承完成"}

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "done", "cancelled")
CAMPAIGN_STATUS_LABELS = {
    "draft": "草稿", "scheduled": "已定时", "sending": "发送中", "done": "已结束", "cancelled": "已取消",
}
ATTACHMENT_KINDS = ("image", "link", "miniprogram", "video", "file")
ATTACHMENT_LABELS = {"image": "图片", "link": "链接", "miniprogram": "小程序卡片", "video": "视频", "file": "文件"}

# pending: task not created yet; creating: a worker is calling add_msg_template; waiting: task
# created, the rep has not sent it (等待业务员确认); sent: the rep sent it; failed: WeCom refused
# the task (errcode kept); cancelled: stopped with cancel_groupmsg_send before the rep sent it.
SENDER_STATUSES = ("pending", "creating", "waiting", "sent", "failed", "cancelled")
SENDER_STATUS_LABELS = {
    "pending": "待创建任务", "creating": "正在创建任务", "waiting": "等待业务员确认", "sent": "业务员已发送",
    "failed": "创建任务失败", "cancelled": "已停止",
}
# Per group: planned (not yet handed to WeCom), waiting (等待业务员确认), sent (已发送),
# not_sent (未发送: the rep sent the task without this group, or WeCom says 0), failed (失败,
# reason kept), dropped (left out when planning, reason kept), cancelled.
TARGET_STATUSES = ("planned", "waiting", "sent", "not_sent", "failed", "dropped", "cancelled")
TARGET_STATUS_LABELS = {
    "planned": "待发送", "waiting": "等待业务员确认", "sent": "已发送", "not_sent": "未发送", "failed": "失败",
    "dropped": "未纳入（见原因）", "cancelled": "已停止",
}


class CustomerGroup(db.Model):
    """A WeCom customer group, as last synced from groupchat/list + groupchat/get, and the
    dealer staff mapped it to (groups carry no dealer of their own)."""

    __tablename__ = "customer_groups"
    __table_args__ = (Index("ix_customer_groups_owner", "owner_userid"), Index("ix_customer_groups_dealer", "dealer_id"))

    id: Mapped[int] = pk()
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    owner_userid: Mapped[str] = mapped_column(String(64))
    owner_status: Mapped[int] = mapped_column(Integer, default=0)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    external_count: Mapped[int] = mapped_column(Integer, default=0)
    wecom_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dealer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()
    updated_at = timestamp()

    dealer = relationship("Dealer")


class Campaign(db.Model):
    """A message (text + up to 9 attachments) for the customer groups of an audience's dealers.
    The audience is in `audience_targets` (owner_type "campaign")."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status_scheduled", "status", "scheduled_at"),)

    id: Mapped[int] = pk()
    title: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()
    updated_at = timestamp()

    created_by = relationship("Staff")
    attachments = relationship("CampaignAttachment", order_by="CampaignAttachment.position", lazy="selectin")


class CampaignAttachment(db.Model):
    """One attachment. Images (and mini-program covers) are stored through app.storage and
    uploaded to WeCom (media/upload, valid 3 days) when the campaign is sent."""

    __tablename__ = "campaign_attachments"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = pk()
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str | None] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(String(512))
    appid: Mapped[str | None] = mapped_column(String(64))
    page: Mapped[str | None] = mapped_column(String(256))
    storage_key: Mapped[str | None] = mapped_column(String(128))
    content_type: Mapped[str | None] = mapped_column(String(128))
    media_id: Mapped[str | None] = mapped_column(String(256))
    media_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignSender(db.Model):
    """One add_msg_template task: one group owner (sender) and the groups planned for them."""

    __tablename__ = "campaign_senders"
    __table_args__ = (UniqueConstraint("campaign_id", "sender_userid"), Index("ix_campaign_senders_status", "status"))

    id: Mapped[int] = pk()
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id"))
    sender_userid: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    msgid: Mapped[str | None] = mapped_column(String(128))
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    task_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at = timestamp()

    staff = relationship("Staff")


class CampaignGroup(db.Model):
    """What happened to one customer group in one campaign."""

    __tablename__ = "campaign_groups"
    __table_args__ = (
        UniqueConstraint("campaign_id", "group_id"),
        Index("ix_campaign_groups_group_status", "group_id", "status", "sent_at"),
    )

    id: Mapped[int] = pk()
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id"))
    sender_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("campaign_senders.id"))
    group_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customer_groups.id"))
    dealer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(String(200))
    result_status: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at = timestamp()

    group = relationship("CustomerGroup", lazy="joined")
    dealer = relationship("Dealer")
