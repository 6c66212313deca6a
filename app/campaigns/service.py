"""The job names RQ knows campaign sends by, kept for the jobs booked under them.

`schedule_campaign` books `send_campaign` on RQ's scheduler as
`app.campaigns.service.send_campaign` (`sending.SCHEDULED_SEND`), and jobs queued before the
campaign rules were split into `limits`, `groups`, `authoring`, `planning`, `sending`,
`results` and `reading` name `send_campaign` and `create_tasks` here. Code imports those
modules, never this one.
"""
from app.campaigns.sending import create_tasks, send_campaign  # noqa: F401
