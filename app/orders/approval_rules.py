"""Auto-approval: a brand setting and the rules an order must meet to skip the rep.

The setting lives in `brand_settings` under `auto_approval` as
`{"enabled": bool, "max_total_fen": int | null}`; absent means off (the default, and the
demo's). `submit_order` asks `refusal()` inside its own transaction and, when there is
none, approves the order there and then (see `app.orders.approval.auto_approve`).
"""
import logging
from dataclasses import dataclass
from types import SimpleNamespace

from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import require
from app.notify import settings

log = logging.getLogger(__name__)

KEY = "auto_approval"
# Prices the pricing service resolved itself; anything else (a price typed in by staff)
# needs a person to look at it.
AUTOMATIC_PRICE_SOURCES = ("dealer", "tier", "list")
MAX_TOTAL_FEN_LIMIT = 10**15


@dataclass(frozen=True)
class AutoApproval:
    enabled: bool = False
    max_total_fen: int | None = None

    def as_value(self):
        return {"enabled": self.enabled, "max_total_fen": self.max_total_fen}

    def describe(self):
        """The setting in words, for the CLI and logs."""
        if not self.enabled:
            return "自动审批：已关闭（所有订单等待业务员审批）"
        limit = f"单笔不超过 {format_yuan(self.max_total_fen)}" if self.max_total_fen is not None else "不限金额"
        return f"自动审批：已开启（{limit}；经销商状态正常、信用额度内、均为系统价格的订单自动通过）"


def _parse(value):
    """A stored value as an AutoApproval; anything malformed counts as off."""
    if value is None:
        return AutoApproval()
    enabled = value.get("enabled") if isinstance(value, dict) else None
    limit = value.get("max_total_fen") if isinstance(value, dict) else None
    if not isinstance(enabled, bool) or not (limit is None or (type(limit) is int and limit >= 0)):
        log.warning("brand setting %s is malformed (%r); treating auto-approval as off", KEY, value)
        return AutoApproval()
    return AutoApproval(enabled, limit)


def read_setting(session):
    """The setting as this transaction sees it."""
    return _parse(settings.read(session, KEY))


def get_auto_approval():
    """The current auto-approval setting."""
    setting = read_setting(db.session)
    db.session.rollback()
    return setting


# Who changed the setting when it was not a console user (the `flask settings` command).
CLI_ACTOR = SimpleNamespace(id=None, name="命令行")


def set_auto_approval(*, enabled, max_total_fen=None, actor=None):
    """Switch auto-approval on or off and set (or clear, with None) the per-order limit.

    The console and the CLI both come here; every change is written to the audit log
    (`settings.auto_approval`, before and after) in the same transaction. `actor` is the
    staff member (the CLI passes none: recorded as 命令行).

    Raises 403 for staff other than admins, 422 `invalid_setting` for a limit that is not
    a positive integer of fen.
    """
    if actor is not None:
        require(actor, "settings.edit", "只有管理员可以修改自动审批规则")
    if not isinstance(enabled, bool):
        raise DomainError("invalid_setting", "enabled 应为 true 或 false", 422)
    if max_total_fen is not None and (type(max_total_fen) is not int or not 1 <= max_total_fen <= MAX_TOTAL_FEN_LIMIT):
        raise DomainError("invalid_setting", "单笔上限应为正整数（单位：分）", 422)
    setting = AutoApproval(enabled, max_total_fen)
    with write_transaction() as session:
        before = read_setting(session)
        settings.write(session, KEY, setting.as_value())
        audit.record(
            session, actor=actor or CLI_ACTOR, action="settings.auto_approval", entity_type="settings", entity_id=KEY,
            label="自动审批规则", before=before.as_value(), after=setting.as_value(),
        )
    return setting


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
