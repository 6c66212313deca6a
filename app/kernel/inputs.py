"""Checks for values typed by staff — console forms and Excel rows — in service calls.

Each check returns the clean value or raises `DomainError("invalid_field", <Chinese message>,
422, {"field": <name>})`, so a form can point at the field and an importer at the column.
Strings from forms and typed values from code are both accepted ("12" and 12 for an int).
"""
import re
from datetime import date

from app.kernel.errors import DomainError
from app.kernel.money import parse_yuan

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def invalid(field, message):
    return DomainError("invalid_field", message, 422, {"field": field})


def text(value, *, field, label, max_len, required=True):
    """Trimmed text without control characters; '' when optional and empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid(field, f"{label}应为文字")
    value = value.strip()
    if not value:
        if required:
            raise invalid(field, f"{label}不能为空")
        return ""
    if _CONTROL.search(value):
        raise invalid(field, f"{label}不能包含控制字符")
    if len(value) > max_len:
        raise invalid(field, f"{label}不能超过 {max_len} 个字符")
    return value


def integer(value, *, field, label, minimum=0, maximum=10**9):
    """A whole number in [minimum, maximum]; '12' and 12 both count, 1.5, '1e3' and True do not."""
    if isinstance(value, bool):
        raise invalid(field, f"{label}应为整数")
    if isinstance(value, str):
        stripped = value.strip()
        digits = stripped[1:] if stripped.startswith("-") else stripped
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 15):
            raise invalid(field, f"{label}应为整数")
        value = int(stripped)
    elif not isinstance(value, int):
        raise invalid(field, f"{label}应为整数")
    if value < minimum:
        raise invalid(field, f"{label}不能小于 {minimum}")
    if value > maximum:
        raise invalid(field, f"{label}不能大于 {maximum}")
    return value


def fen(value, *, field, label):
    """Money as integer fen (an int, never a float or bool)."""
    return integer(value, field=field, label=label, minimum=0, maximum=10**14)


def yuan(value, *, field, label):
    """Money typed in yuan ('12.50', '¥1,200', '5万') as integer fen (`app.kernel.money.parse_yuan`)."""
    try:
        return parse_yuan(value)
    except ValueError as exc:
        raise invalid(field, f"{label}：{exc}") from None


def choice(value, *, field, label, choices):
    """One of `choices` (a dict of value -> Chinese label, or a sequence)."""
    if value not in choices:
        names = "、".join(choices.values() if isinstance(choices, dict) else choices)
        raise invalid(field, f"{label}只能是 {names} 之一")
    return value


def day(value, *, field, label, required=True):
    """A date, or 'YYYY-MM-DD' text; None when optional and empty."""
    if value is None or value == "":
        if required:
            raise invalid(field, f"{label}不能为空")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise invalid(field, f"{label}格式应为 YYYY-MM-DD")
