"""The request id: one opaque string that follows a piece of work from the HTTP request
into the RQ jobs it enqueues and the outbox rows it writes (and so into their deliveries).

The web layer binds it per request (`app.logs`), a worker binds it per job from the job's
meta (`app.jobs`), delivery binds it per outbox row (`app.notify.delivery`). Everything
else only reads it: `current()` is None outside such a scope. Every log line carries it.
"""
import contextlib
import contextvars
import re
import uuid

_request_id = contextvars.ContextVar("dinghuo_request_id", default=None)

# What an incoming X-Request-ID may look like to be kept (a proxy's $request_id, a UUID,
# a caller's trace id); anything else is replaced, so a header cannot inject into logs.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")


def current():
    """The request id of the work in progress, or None."""
    return _request_id.get()


def new_id():
    return uuid.uuid4().hex


def accept(value):
    """`value` when it is a sane request id, else a fresh one."""
    if value and _SANE.fullmatch(value):
        return value
    return new_id()


def bind(request_id):
    """Make `request_id` current until `unbind(token)`; returns the token."""
    return _request_id.set(request_id)


def unbind(token):
    _request_id.reset(token)


@contextlib.contextmanager
def bound(request_id):
    """`with bound(rid):` runs the block with `rid` current (None leaves the current one)."""
    if request_id is None:
        yield current()
        return
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)
