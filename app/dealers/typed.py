"""Dealer fields from what a person typed — a console form or a spreadsheet row (strings, or
the numbers and dates a cell holds) — and the create/edit actions that take them.

Cells hold what Excel made of the typing (30.0 for 30, a datetime for a date, 13800000000 for a
phone number) and people type "2026/1/31" or full-width digits, so these readers are more
lenient than `app.kernel.inputs`; their messages name no field, `dealer_validation_error` does.
"""
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal

from app.dealers.admin import create_dealer, get_dealer_for_staff, permissions_for, update_dealer
from app.dealers.fields import DEALER_FIELDS, checked_values, dealer_validation_error
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.money import parse_yuan
from app.kernel.permissions import require


def _text_of(value):
    """A cell or form value as stripped text; None when blank. Numbers read as typed (12 -> "12")."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("应为文字")
    return value.strip() or None


def _parse_int(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = unicodedata.normalize("NFKC", _text_of(value) or "")
    digits = text[1:] if text[:1] in ("-", "+") else text  # a sign is a number too: -3 is "negative"
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        raise ValueError("请输入整数")
    return int(text)


def _parse_date(value):
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", _text_of(value) or "")
    match = re.fullmatch(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})", text)
    if match is None:
        raise ValueError("日期格式应为 2026-01-31")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ValueError("不是有效的日期") from None


def dealer_fields_from_text(values):
    """Keyword arguments for `create_dealer` / `update_dealer` from what a person typed into the
    console's form or a spreadsheet row (strings, or the numbers and dates a cell holds).

    Only the keys present come back, so a partial row updates only its columns. Blank means
    empty (None; 0 days for `payment_terms_days`). Amounts are read in yuan — `annual_target`
    and `credit_limit`, e.g. "12,345.67" or "50万" — and come back as integer
    `annual_target_fen` / `credit_limit_fen`. Raises 422 naming every unreadable field.
    """
    out, errors = _read_text(values)
    if errors:
        raise dealer_validation_error(errors)
    return out


def _read_text(values):
    out, errors = {}, {}
    for key, raw in values.items():
        try:
            blank = raw is None or (isinstance(raw, str) and not raw.strip())
            if key in ("annual_target", "credit_limit"):
                out[key + "_fen"] = None if blank else parse_yuan(raw)
            elif key == "payment_terms_days":
                out[key] = 0 if blank else _parse_int(raw)
            elif key in ("contract_start", "contract_end"):
                out[key] = None if blank else _parse_date(raw)
            elif key in DEALER_FIELDS:
                out[key] = _text_of(raw)
            else:
                raise TypeError(f"unknown dealer field {key!r}")
        except ValueError as exc:
            field = key + "_fen" if key in ("annual_target", "credit_limit") else key
            errors.setdefault(field, []).append(str(exc))
    return out, errors


def _all_problems(session, fields, unreadable, dealer=None):
    """422 naming the unreadable fields and every problem the readable ones have, so a
    form or a spreadsheet row is corrected in one go."""
    try:
        checked_values(session, fields, dealer)
    except DomainError as exc:
        if exc.code != "validation_error":
            raise
        unreadable = {**exc.details["fields"], **unreadable}
    ordered = sorted(unreadable, key=lambda f: DEALER_FIELDS.index(f) if f in DEALER_FIELDS else len(DEALER_FIELDS))
    return dealer_validation_error({field: unreadable[field] for field in ordered})


def create_dealer_from_text(*, staff, values, reason=None, session=None):
    """`create_dealer` from a console form or a spreadsheet row, as `dealer_fields_from_text`
    reads it; an unreadable value and every other problem of the row are reported together."""
    require(staff, "dealers.create", "只有管理员可以新建经销商")
    fields, unreadable = _read_text(values)
    fields = {**dict.fromkeys(("code", "name", "tier", "region_code")), **fields}
    if unreadable:
        raise _all_problems(session or db.session, fields, unreadable)
    return create_dealer(staff=staff, reason=reason, session=session, **fields)


def update_dealer_from_text(*, staff, code, values, reason=None, session=None):
    """`update_dealer` from a console form or a spreadsheet row (only the columns given)."""
    fields, unreadable = _read_text(values)
    if unreadable:
        require(staff, "dealers.edit", "你没有修改经销商的权限")
        dealer = get_dealer_for_staff(staff=staff, code=code)
        if set(unreadable) - set(permissions_for(staff, dealer)["edit_fields"]):
            raise DomainError("forbidden", "你的角色不能修改这些资料", 403)
        raise _all_problems(session or db.session, fields, unreadable, dealer)
    return update_dealer(staff=staff, code=code, reason=reason, session=session, **fields)

