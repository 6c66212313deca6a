"""WeCom (企业微信): outbound senders and the inbound callback.

Reps' alerts, approval cards and the bot arrive with the notifications issue; the order
service already records every transition they will announce.
"""
