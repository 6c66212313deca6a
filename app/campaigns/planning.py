"""The plan: which of the audience's groups a campaign goes to, one WeCom task per group
owner (the sender), and which are left out and why; frozen into rows when it goes out."""
from collections import defaultdict

from sqlalchemy import select

from app.audience import service as audiences
from app.campaigns.limits import monthly_limit, remaining_this_month
from app.campaigns.models import CampaignGroup, CampaignSender, CustomerGroup
from app.dealers.models import Dealer
from app.kernel.clock import utcnow
from app.staff.models import Staff

MAX_CHATS_PER_TASK = 2000  # chat_id_list


def compute_plan(session, campaign):
    """What sending `campaign` now would do: for each dealer in its audience, its mapped active
    groups, grouped by owner (sender). Returns {"senders": {userid: [entry]}, "dropped": [entry],
    "dealers": n, "dealers_without_groups": [Dealer], "limit": n}; an entry is
    {"group", "dealer", "remaining"} (+ "reason" when dropped)."""
    audience = audiences.load("campaign", campaign.id, session=session)
    dealer_ids = audiences.dealer_ids(audience, session=session, statuses=("active",))
    groups = session.execute(
        select(CustomerGroup).where(CustomerGroup.dealer_id.in_(dealer_ids), CustomerGroup.status == "active")
        .order_by(CustomerGroup.owner_userid, CustomerGroup.id)
    ).scalars().all() if dealer_ids else []
    dealers = {d.id: d for d in session.execute(select(Dealer).where(Dealer.id.in_(dealer_ids))).scalars()} \
        if dealer_ids else {}
    remaining = remaining_this_month(session, [g.id for g in groups], exclude_campaign_id=campaign.id)
    limit = monthly_limit()
    senders, dropped = defaultdict(list), []
    for group in groups:
        entry = {"group": group, "dealer": dealers.get(group.dealer_id), "remaining": remaining[group.id]}
        if group.owner_status != 0:
            dropped.append({**entry, "reason": "群主已离职，需在企业微信后台分配继承后再发"})
        elif remaining[group.id] <= 0:
            dropped.append({**entry, "reason": f"本月群发次数已用完（每群每月上限 {limit} 条）"})
        elif len(senders[group.owner_userid]) >= MAX_CHATS_PER_TASK:
            dropped.append({**entry, "reason": f"同一群主一次最多 {MAX_CHATS_PER_TASK} 个群"})
        else:
            senders[group.owner_userid].append(entry)
    with_groups = {g.dealer_id for g in groups}
    return {
        "senders": dict(senders), "dropped": dropped, "dealers": len(dealer_ids), "limit": limit,
        "dealers_without_groups": [d for i, d in dealers.items() if i not in with_groups],
    }


def freeze_plan(session, campaign, plan):
    now = utcnow()
    staff_ids = dict(session.execute(
        select(Staff.wecom_userid, Staff.id).where(Staff.wecom_userid.in_(list(plan["senders"])))).all())
    for userid, entries in plan["senders"].items():
        sender = CampaignSender(campaign_id=campaign.id, sender_userid=userid, staff_id=staff_ids.get(userid),
                                status="pending", updated_at=now)
        session.add(sender)
        session.flush()
        for entry in entries:
            session.add(CampaignGroup(campaign_id=campaign.id, sender_id=sender.id, group_id=entry["group"].id,
                                      dealer_id=entry["group"].dealer_id, status="planned", updated_at=now))
    for entry in plan["dropped"]:
        session.add(CampaignGroup(campaign_id=campaign.id, group_id=entry["group"].id,
                                  dealer_id=entry["group"].dealer_id, status="dropped", reason=entry["reason"],
                                  updated_at=now))
