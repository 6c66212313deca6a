"""Domain events: a change publishes once, in its own transaction; subscribers react there.

A service that changes something others care about calls
`publish(session, "policy.published", policy=..., changes=...)` inside its write
transaction. Every subscriber registered for that name runs at once, with the same session,
so what it writes (outbox rows for WeChat, WeCom, robots, webhooks …) commits or rolls back
with the change — nothing is sent for a change that did not happen, nothing is lost for one
that did. Subscribers are registered by `create_app` (the one place that wires shells to the
core), so a domain never imports the shell that reacts to it.

Each event name is declared in `EVENTS` with the keyword arguments it carries: a typo in a
publisher or a subscriber is an error at once, not a silent no-op.
"""
from flask import current_app

# name -> keyword arguments every publisher passes (subscribers take them as keywords)
EVENTS = {
    # `app.orders.states.transition`: placed, then every later step; `card_tap` is the WeCom
    # card tap an approval answers (None otherwise), for the rep's notifier.
    "order.placed": ("order", "actor"),
    "order.transitioned": ("order", "from_status", "to_status", "actor", "reason", "card_tap"),
    "shipment.sent": ("order", "carrier", "tracking_no"),
    "policy.published": ("policy", "changes"),
    "campaign.sending": ("campaign", "plan"),
    "return.requested": ("request", "order"),
    "return.changed": ("request", "order", "to_status", "reason", "amount_fen"),
    "offline_payment.decided": ("record", "order", "to_status", "reason"),
    "rebate.approved": ("document", "period_label"),
    "statement.issued": ("statement",),
    "statement.dispute_resolved": ("statement",),
}

_KEY = "dinghuo.events"


def init_app(app):
    app.extensions[_KEY] = {name: [] for name in EVENTS}


def subscribe(app, name, handler):
    """Have `handler(session, **payload)` run for every `name` event `app` publishes. The
    same handler twice for one event is refused: each change reaches a subscriber once."""
    handlers = app.extensions[_KEY][name]
    if handler in handlers:
        raise ValueError(f"{handler!r} already subscribes to {name}")
    handlers.append(handler)


def unsubscribe(app, name, handler):
    app.extensions[_KEY][name].remove(handler)


def subscribers(name, app=None):
    return tuple((app or current_app).extensions[_KEY][name])


def publish(session, name, **payload):
    """Run every subscriber of `name` now, in `session`'s transaction, in the order they
    were registered. The payload must carry exactly the event's declared arguments."""
    if set(payload) != set(EVENTS[name]):
        raise TypeError(f"{name} carries {EVENTS[name]}, got {tuple(payload)}")
    for handler in current_app.extensions[_KEY][name]:
        handler(session, **payload)
