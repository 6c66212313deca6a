"""Campaign jobs on the low queue: the periodic tick and the daily group sync.

`tick()` (every CAMPAIGN_TICK_SECONDS) sends scheduled campaigns whose time has come (the
scheduler usually did already), polls the results of campaigns being sent and reminds reps
of tasks they have not confirmed. Each step is safe to run twice.
"""
import logging

from app.campaigns.groups import sync_groups
from app.campaigns.reading import due_campaigns
from app.campaigns.results import poll_campaign
from app.campaigns.sending import create_tasks, recover_stuck_senders, send_campaign

log = logging.getLogger(__name__)

JOB_QUEUE = "low"


def tick():
    due, sending = due_campaigns()
    sent = polled = 0
    for campaign_id in due:
        try:
            send_campaign(campaign_id)
            sent += 1
        except Exception:
            log.exception("sending campaign %s failed; the next tick tries again", campaign_id)
    for campaign_id in sending:
        try:
            recover_stuck_senders(campaign_id)  # a worker died while creating a task
            create_tasks(campaign_id)  # a sender left pending by an interrupted run
            poll_campaign(campaign_id)
            polled += 1
        except Exception:
            log.exception("polling campaign %s failed; the next tick tries again", campaign_id)
    return {"sent": sent, "polled": polled}


def sync_all_groups():
    return sync_groups()
