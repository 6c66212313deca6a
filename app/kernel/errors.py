"""The one error type services raise: `DomainError(code, message, status, details)`.

`code` is English for programs, `message` Chinese for people; `app/errors.py` renders it
as `{"error": {"code", "message", "details"}}` (JSON) or an HTML page (console).
"""


class DomainError(Exception):
    """A rule of the business refused the request; safe to show to the user."""

    def __init__(self, code, message, status=422, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}


class NotFound(DomainError):
    def __init__(self, message="资源不存在", code="not_found", details=None):
        super().__init__(code, message, 404, details)


class DeliveryError(Exception):
    """A channel could not deliver an outbox row (WeChat, WeCom, a webhook …).

    `errcode` is the far side's code (None when there was none), `errmsg` its message or
    ours. `permanent`: retrying the same row can never help. `rate_limited`: the far side
    asked us to slow down (retried after a wait, not counted as a try). Every channel's
    errors are, or are translated into, this one type, so delivery knows no channel.
    """

    permanent = True
    rate_limited = False

    def __init__(self, errcode, errmsg):
        super().__init__(f"errcode={errcode} errmsg={errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
