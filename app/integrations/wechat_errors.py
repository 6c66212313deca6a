"""The WeChat/WeCom gateways' errors and the platform codes they are decided by.

    WeChatError          base; `permanent` is True: the request itself is wrong
                         (43101 user refused / no quota, 47003 bad template data,
                         40037 bad template_id, 40003 bad openid/userid, 81013 all
                         recipients invalid, HTTP 4xx...). Do not retry.
    WeChatUnavailable    network error, timeout, HTTP 5xx, errcode -1: back off, retry.
    WeChatRateLimited    45009 (also 45011, 45033; robot over its 20/min limit):
                         wait at least `RATE_LIMIT_WAIT_SECONDS` before retrying.
"""
from app.kernel.errors import DeliveryError

# WeChat's and WeCom's "system busy, try again later" code.
ERRCODE_SYSTEM_BUSY = -1
# The call's access token is invalid (40001/40014), expired (42001) or revoked (42007).
TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 42007})
# "api freq out of limit" (both platforms, robots included), "api minute-quota
# reach limit" (WeChat) and "too many concurrent calls" (WeCom).
RATE_LIMIT_ERRCODES = frozenset({45009, 45011, 45033})
# WeCom: every recipient (user, party, tag) of a message is invalid.
ERRCODE_ALL_RECIPIENTS_INVALID = 81013
# Callers wait at least this long after a WeChatRateLimited.
RATE_LIMIT_WAIT_SECONDS = 60


class WeChatError(DeliveryError):
    """WeChat or WeCom refused the request, or could not be asked.

    `errcode` is the platform's numeric errcode (None when the failure happened
    before one was produced, e.g. an HTTP error or a refusal by this gateway);
    `errmsg` is the platform's message or our own description. `permanent` says
    whether retrying the same request can ever help.
    """

    permanent = True


class WeChatUnavailable(WeChatError):
    """Transient failure: network error, timeout, HTTP 5xx or errcode -1.

    Callers back off and retry later; the request itself was not wrong.
    """

    permanent = False


class WeChatRateLimited(WeChatError):
    """The platform's frequency limit was hit (45009 and friends).

    Callers wait at least `RATE_LIMIT_WAIT_SECONDS` before trying again.
    """

    permanent = False
    rate_limited = True


def cache_unavailable(exc):
    """The error for a Redis failure of the access-token cache."""
    return WeChatUnavailable(None, f"access_token 缓存（Redis）不可用：{exc.__class__.__name__}")
