"""Outbox channels: how a row of each channel is sent, in one registry.

A channel is a name (`Outbox.channel`), a `send(config, row)` that delivers one row or
raises `app.kernel.errors.DeliveryError`, an optional per-recipient rate limit (messages,
window seconds) and an optional `after_permanent_failure(conn, row, errcode)` that runs in
the transaction recording the failure. Delivery (`app.notify.delivery`) looks channels up
here and knows none of them. A new channel — an ERP webhook, say — is one module that calls
`register(app, ...)` from `create_app`; the WeChat and WeCom ones are in
`app.notify.wechat_channels`.
"""
from dataclasses import dataclass

from flask import current_app

from app.kernel.errors import DeliveryError

_KEY = "dinghuo.channels"


@dataclass(frozen=True)
class Channel:
    name: str
    send: object  # (config, row) -> None, raises DeliveryError
    rate_limit: tuple | None = None  # (messages, window seconds) per recipient
    after_permanent_failure: object = None  # (conn, row, errcode) -> None, same transaction


def init_app(app):
    app.extensions[_KEY] = {}


def register(app, name, send, *, rate_limit=None, after_permanent_failure=None):
    """Make `name` a channel of `app`. A name registered twice is refused."""
    channels = app.extensions[_KEY]
    if name in channels:
        raise ValueError(f"channel {name} is already registered")
    channels[name] = Channel(name, send, rate_limit, after_permanent_failure)


def unregister(app, name):
    del app.extensions[_KEY][name]


def get(name):
    """The channel called `name`; an unknown one is a permanent delivery failure."""
    channel = current_app.extensions[_KEY].get(name)
    if channel is None:
        raise DeliveryError(None, f"未知的通知渠道 {name}")
    return channel


def registered(name):
    return name in current_app.extensions[_KEY]


def names(app=None):
    return tuple((app or current_app).extensions[_KEY])
