"""Dealer-facing notifications: subscribe messages to consenting users and the message list."""


def order_changed(session, order, *, from_status, to_status, reason=None):
    """Write the dealer's notifications for an order transition (outbox rows + message list)."""
