"""The monthly limit: how many group messages a customer group may still receive this month.

WeCom lets a customer group receive a limited number of group messages a month; the plan
leaves out groups with nothing left, counting what was sent this month and what is still
waiting for a rep.
"""
import calendar
from datetime import timedelta, timezone

from flask import current_app
from sqlalchemy import func, or_, select

from app.campaigns.models import Campaign, CampaignGroup
from app.kernel.clock import BUSINESS_TZ, utcnow


def month_bounds(now=None):
    """[start, end) of the current China month, in UTC."""
    now = (now or utcnow()).astimezone(BUSINESS_TZ)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.astimezone(timezone.utc), (start + timedelta(days=days)).astimezone(timezone.utc)


def monthly_limit(now=None):
    """Group messages a customer group may receive this month: CAMPAIGN_GROUP_MONTHLY_LIMIT, or
    (0, the default) as many as the month has days, as WeCom documents for add_msg_template."""
    configured = current_app.config.get("CAMPAIGN_GROUP_MONTHLY_LIMIT") or 0
    if configured > 0:
        return configured
    now = (now or utcnow()).astimezone(BUSINESS_TZ)
    return calendar.monthrange(now.year, now.month)[1]


def used_this_month(session, group_ids, *, exclude_campaign_id=None):
    """{group_id: messages counted this month}: sent this month, plus those of campaigns sent this
    month still waiting for a rep (they count when sent, so they hold their place; a task left
    unconfirmed from an earlier month counts again only once it is sent)."""
    if not group_ids:
        return {}
    start, end = month_bounds()
    sent = (CampaignGroup.status == "sent") & (CampaignGroup.sent_at >= start) & (CampaignGroup.sent_at < end)
    waiting = CampaignGroup.status.in_(("waiting", "planned")) & (Campaign.sent_at >= start) & (Campaign.sent_at < end)
    query = (
        select(CampaignGroup.group_id, func.count())
        .join(Campaign, Campaign.id == CampaignGroup.campaign_id)
        .where(CampaignGroup.group_id.in_(list(group_ids)), or_(sent, waiting))
        .group_by(CampaignGroup.group_id)
    )
    if exclude_campaign_id is not None:
        query = query.where(CampaignGroup.campaign_id != exclude_campaign_id)
    return dict(session.execute(query).all())


def remaining_this_month(session, group_ids, **kwargs):
    limit = monthly_limit()
    used = used_this_month(session, group_ids, **kwargs)
    return {gid: max(0, limit - used.get(gid, 0)) for gid in group_ids}
