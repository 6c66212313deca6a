"""Rep-facing notifications in WeCom: approval cards, credit and shipment alerts."""


def order_changed(session, order, *, from_status, to_status, actor=None, reason=None):
    """Write the rep's WeCom notifications for an order transition (outbox rows)."""
