"""WeCom (企业微信): the inbound callback (/wecom/callback), the bot reps chat with, the
approval card's button events and the daily sales digest.

Outbound delivery of what these write (outbox rows) is `app.notify.delivery`'s job.
"""

