"""What an order transition notifies, in the transition's own transaction.

The order service calls `order_changed` after writing the event row; the dealer side
(subscribe messages + the mini-program message list) and the rep side (WeCom cards and
messages) each write their outbox rows here, so they commit or roll back with the change.
"""
from app.notify import dealer_alerts, rep_alerts


def order_changed(session, order, *, from_status, to_status, actor=None, reason=None):
    dealer_alerts.order_changed(
        session, order, from_status=from_status, to_status=to_status, reason=reason, actor=actor
    )
    rep_alerts.order_changed(session, order, from_status=from_status, to_status=to_status, actor=actor, reason=reason)
