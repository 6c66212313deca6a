"""Auto-approval: a brand setting and the rules an order must meet to skip the rep.

The setting lives in `brand_settings` under `auto_approval` as
`{"enabled": bool, "max_total_fen": int | null}`, declared in `app.kernel.settings`; absent
means off (the default, and the demo's). `submit_order` asks `refusal()` inside its own transaction and, when there is
none, approves the order there and then (see `app.orders.approval.auto_approve`).
"""

from app.audit import service as audit
from app.extensions import db
from app.kernel import settings
from app.kernel.money import format_yuan
from app.kernel.settings import AutoApproval

KEY = settings.AUTO_APPROVAL.key
# Prices the pricing service resolved itself; anything else (a price typed in by staff)
# needs a person to look at it.
AUTOMATIC_PRICE_SOURCES = ("dealer", "tier", "list")


def read_setting(session):
    """The setting as this transaction sees it."""
    return settings.read(session, settings.AUTO_APPROVAL)


def get_auto_approval():
    """The current auto-approval setting."""
    setting = read_setting(db.session)
    db.session.rollback()
    return setting


def set_auto_approval(*, enabled, max_total_fen=None, actor=None):
    """Switch auto-approval on or off and set (or clear, with None) the per-order limit.

    The console and the CLI both come here; every change is written to the audit log
    (`settings.auto_approval`, before and after) in the same transaction. `actor` is the
    staff member (the CLI passes none: recorded as 命令行).

    Raises 403 for staff other than admins, 422 `invalid_setting` for a limit that is not
    a positive integer of fen.
    """
    return audit.change_setting(settings.AUTO_APPROVAL, AutoApproval(enabled, max_total_fen), actor=actor,
                                refused="只有管理员可以修改自动审批规则")


def refusal(setting, *, dealer_status, account, order):
    """Why this freshly placed order may not be approved automatically, or None if it may.

    `account` is the dealer's locked credit account after the order's hold; `order` has
    `total_fen` and `lines` (each with `price_source`).
    """
    if not setting.enabled:
        return "自动审批未开启"
    if dealer_status != "active":
        return "经销商状态异常"
    if account.used_fen > account.credit_limit_fen:
        return "超出信用额度"
    if setting.max_total_fen is not None and order.total_fen > setting.max_total_fen:
        return f"订单金额超过自动审批上限 {format_yuan(setting.max_total_fen)}"
    if any(line.price_source not in AUTOMATIC_PRICE_SOURCES for line in order.lines):
        return "订单含人工改价"
    return None
