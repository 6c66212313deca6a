"""Reading campaigns: one, a page of them, those the periodic tick has to act on, and the
frozen plan of one that went out."""
from sqlalchemy import func, select

from app.campaigns.models import Campaign, CampaignGroup, CampaignSender
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import NotFound

CAMPAIGN_PAGE_SIZE = 30


def get_campaign(campaign_id):
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("群发活动不存在", "campaign_not_found")
    return campaign


def list_campaigns(*, status=None, page=1, page_size=CAMPAIGN_PAGE_SIZE):
    query = select(Campaign)
    if status:
        query = query.where(Campaign.status == status)
    total = db.session.execute(query.with_only_columns(func.count()).order_by(None)).scalar_one()
    rows = db.session.execute(query.order_by(Campaign.id.desc()).limit(page_size).offset((page - 1) * page_size)
                              ).scalars().all()
    return rows, total


def due_campaigns(now=None):
    """Ids of scheduled campaigns whose time has come, and of campaigns being sent."""
    now = now or utcnow()
    due = db.session.execute(select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
                             .order_by(Campaign.id)).scalars().all()
    sending = db.session.execute(select(Campaign.id).where(Campaign.status == "sending").order_by(Campaign.id)
                                 ).scalars().all()
    return due, sending


def has_frozen_plan(session, campaign_id):
    """Whether the campaign's plan was frozen (it went out): it has rows of its own."""
    return session.execute(select(CampaignGroup.id).where(CampaignGroup.campaign_id == campaign_id).limit(1)
                           ).first() is not None


def frozen_plan(session, campaign_id):
    """(senders, group rows) of a campaign that went out: the senders by userid, the rows by
    sender, then as planned."""
    senders = session.execute(select(CampaignSender).where(CampaignSender.campaign_id == campaign_id)
                              .order_by(CampaignSender.sender_userid)).scalars().all()
    rows = session.execute(select(CampaignGroup).where(CampaignGroup.campaign_id == campaign_id)
                           .order_by(CampaignGroup.sender_id, CampaignGroup.id)).scalars().all()
    return senders, rows
