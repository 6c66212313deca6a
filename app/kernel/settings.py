"""Typed brand settings: one JSON value per key in `brand_settings`, each key declared here.

Every setting the brand can change is a `Setting` in `REGISTRY` below: its key, its Chinese
label, its default, how its stored JSON becomes a typed value and back, and what a bad value
is (a Chinese message). Readers ask for a setting, never for a key with a default of their
own; a missing or malformed stored value reads as the declared default (and a malformed one
is logged). Writers get 422 `invalid_setting` with the setting's message for a bad value.

    rate_bp = settings.read(session, settings.REBATE_USAGE)
    settings.write(session, settings.AUTO_APPROVAL, AutoApproval(enabled=True))

Readers pass the session of their own transaction, so a setting is read consistently with
the change it governs (submit_order reads `auto_approval` on every order); writers call
inside a `write_transaction()`. A new brand setting is a new `Setting` here (its typed value
beside it when it has more than one field) and a line in `REGISTRY`; the domain that uses
it keeps its permission check and its audit entry.
"""
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import JSON, String, bindparam, select
from sqlalchemy.orm import Mapped, mapped_column

from app.database import dialect_insert
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.money import BP_PER_UNIT, format_yuan
from app.models_base import timestamp

log = logging.getLogger(__name__)


class BrandSetting(db.Model):
    """Brand-wide settings edited by staff (e.g. `auto_approval`), one JSON value per key."""

    __tablename__ = "brand_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at = timestamp()


TABLE = BrandSetting.__table__


@dataclass(frozen=True)
class Setting:
    """A declared brand setting.

    `load(stored)` turns the stored JSON into the typed value or raises ValueError when it is
    malformed; `dump(value)` is the JSON to store; `problem(value)` is the Chinese message for
    a value that may not be written, or None. `when_malformed` ends the log line written when
    a stored value is malformed.
    """

    key: str
    label: str
    default: object
    load: Callable
    dump: Callable
    problem: Callable
    when_malformed: str


# --- auto-approval (orders skip the rep) -------------------------------------------------------

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


def _load_auto_approval(value):
    enabled = value.get("enabled") if isinstance(value, dict) else None
    limit = value.get("max_total_fen") if isinstance(value, dict) else None
    if not isinstance(enabled, bool) or not (limit is None or (type(limit) is int and limit >= 0)):
        raise ValueError(value)
    return AutoApproval(enabled, limit)


def _auto_approval_problem(setting):
    if not isinstance(setting.enabled, bool):
        return "enabled 应为 true 或 false"
    limit = setting.max_total_fen
    if limit is not None and (type(limit) is not int or not 1 <= limit <= MAX_TOTAL_FEN_LIMIT):
        return "单笔上限应为正整数（单位：分）"
    return None


AUTO_APPROVAL = Setting(
    key="auto_approval", label="自动审批规则", default=AutoApproval(),
    load=_load_auto_approval, dump=AutoApproval.as_value, problem=_auto_approval_problem,
    when_malformed="treating auto-approval as off",
)


# --- rebate usage at checkout (basis points of the goods amount) --------------------------------

def _is_rate(rate):
    return type(rate) is int and 0 <= rate <= BP_PER_UNIT


def _load_rebate_usage(value):
    rate = value.get("max_rate_bp") if isinstance(value, dict) else None
    if not _is_rate(rate):
        raise ValueError(value)
    return rate


REBATE_USAGE = Setting(
    key="rebate_usage", label="返利抵扣比例", default=3000,
    load=_load_rebate_usage, dump=lambda rate: {"max_rate_bp": rate},
    problem=lambda rate: None if _is_rate(rate) else "返利抵扣比例应在 0%～100% 之间（最多两位小数）",
    when_malformed="using 3000 bp",
)


# --- a carrier's 签收 push completes the order (app.tracking.pushes) ----------------------------

def _load_switch(value):
    enabled = value.get("enabled") if isinstance(value, dict) else None
    if not isinstance(enabled, bool):
        raise ValueError(value)
    return enabled


DELIVERY_COMPLETES_ORDER = Setting(
    key="delivery_completes_order", label="快递签收后自动完成订单", default=False,
    load=_load_switch, dump=lambda enabled: {"enabled": enabled},
    problem=lambda enabled: None if isinstance(enabled, bool) else "应为开启或关闭",
    when_malformed="treating it as off",
)


REGISTRY = {setting.key: setting for setting in (AUTO_APPROVAL, REBATE_USAGE, DELIVERY_COMPLETES_ORDER)}


# --- reading and writing -----------------------------------------------------------------------

@functools.cache
def _read_statement():
    return select(TABLE.c.value).where(TABLE.c.key == bindparam("key"))


def stored_column(setting):
    """The setting's stored JSON as a scalar subquery column (NULL when never written), for a
    hot path that reads it inside a statement it runs anyway; `from_stored` types it."""
    return select(TABLE.c.value).where(TABLE.c.key == setting.key).scalar_subquery().label(f"setting_{setting.key}")


def read(session, setting):
    """The setting's typed value as this transaction sees it: the default when never written
    or when what is stored is malformed."""
    stored = session.connection().execute(_read_statement(), {"key": setting.key}).scalar_one_or_none()
    return from_stored(setting, stored)


def from_stored(setting, stored):
    """The typed value of `stored` (the JSON in `brand_settings`, None: never written)."""
    if stored is None:
        return setting.default
    try:
        return setting.load(stored)
    except ValueError:
        log.warning("brand setting %s is malformed (%r); %s", setting.key, stored, setting.when_malformed)
        return setting.default


def write(session, setting, value):
    """Store the typed `value`, replacing what was there; 422 `invalid_setting` (nothing
    written) when the setting refuses it."""
    message = setting.problem(value)
    if message is not None:
        raise DomainError("invalid_setting", message, 422)
    stored = setting.dump(value)
    now = utcnow()
    stmt = dialect_insert(session, TABLE).values(key=setting.key, value=stored, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=[TABLE.c.key], set_={"value": stored, "updated_at": now}))
