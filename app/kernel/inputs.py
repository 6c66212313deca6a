"""Checks for values typed by staff — console forms and Excel rows — in service calls.

Each check returns the clean value or raises `DomainError("invalid_field", <Chinese message>,
422, {"field": <name>})`, so a form can point at the field and an importer at the column.
Strings from forms and typed values from code are both accepted ("12" and 12 for an int).

`cell=True` reads a spreadsheet cell (`app.imports.sheets` turns the error into a
`CellError`): a number in a text column is text, a float cell is a number as Excel shows it,
"1,200" is an integer, 2026/11/26 and 2026年11月26日 are dates, a blank cell is empty; the
messages are the importer's, which quote the cell (they differ from the form messages, and
both are kept as people know them).
"""
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from app.kernel.errors import DomainError
from app.kernel.money import BP_PER_UNIT, parse_yuan

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def invalid(field, message):
    return DomainError("invalid_field", message, 422, {"field": field})


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value):
    """A cell's value as quoted in a message."""
    return str(value).strip()[:20]


def text(value, *, field, label, max_len, required=True, cell=False):
    """Trimmed text without control characters; '' when optional and empty.

    A cell may hold a number typed into a text column (a code 1001 is "1001") and may hold
    control characters (a line break in a cell), as the importer has always taken them."""
    if cell and value is not None and not isinstance(value, (str, bool)):
        if isinstance(value, (datetime, date)):
            raise invalid(field, f"{label}应为文字，不是日期")
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid(field, f"{label}应为文字")
    value = value.strip()
    if not value:
        if required:
            raise invalid(field, f"{label}不能为空")
        return ""
    if not cell and _CONTROL.search(value):
        raise invalid(field, f"{label}不能包含控制字符")
    if len(value) > max_len:
        raise invalid(field, f"{label}不能超过 {max_len} 个字符")
    return value


def integer(value, *, field, label, minimum=0, maximum=10**9, cell=False, required=True, default=None):
    """A whole number in [minimum, maximum]; '12', '+12' and 12 count, 1.5, '1e3' and True do not.

    A cell may also be 1200.0 or "1,200"; a blank cell is refused when `required`, else
    `default` (a typed value has no blank: '' is not a number)."""
    if cell:
        value = _cell_integer(value, field=field, label=label, required=required)
        if value is None:
            return default
    elif isinstance(value, bool):
        raise invalid(field, f"{label}应为整数")
    elif isinstance(value, str):
        stripped = value.strip()
        digits = stripped[1:] if stripped[:1] in ("-", "+") else stripped
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


def _cell_integer(value, *, field, label, required):
    """A cell as an int, or None for a blank one that may be blank."""
    if _blank(value):
        if required:
            raise invalid(field, f"{label}不能为空")
        return None
    if isinstance(value, bool) or isinstance(value, (datetime, date)):
        raise invalid(field, f"{label}应为整数")
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(field, f"{label}应为整数，不能有小数")
        return int(value)
    if isinstance(value, int):
        return value
    raw = re.sub(r"[\s,，]", "", str(value))
    if not re.fullmatch(r"[-+]?\d+", raw):
        raise invalid(field, f"{label}“{_shown(value)}”应为整数")
    return int(raw)


def fen(value, *, field, label):
    """Money as integer fen (an int, never a float or bool)."""
    return integer(value, field=field, label=label, minimum=0, maximum=10**14)


def yuan(value, *, field, label, cell=False):
    """Money typed in yuan ('12.50', '¥1,200', '5万') as integer fen (`app.kernel.money.parse_yuan`).

    A number cell holds a binary float, so it is first read as the 15 significant digits Excel
    itself shows: a formula's 11.000000000000002 is 11, not "more than two decimals"."""
    if cell:
        if _blank(value):
            raise invalid(field, f"{label}不能为空")
        if isinstance(value, (datetime, date)):
            raise invalid(field, f"{label}应为金额（元），如 12.50")
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise invalid(field, f"{label}应为金额（元），如 12.50")
            value = Decimal(format(value, ".15g"))
    try:
        return parse_yuan(value)
    except ValueError as exc:
        raise invalid(field, f"{label}“{_shown(value)}”：{exc}" if cell else f"{label}：{exc}") from None


def percent_bp(value, *, field, label, allow_zero=False):
    """A percentage typed by a person ('2', '2.5%', '0.25'; at most two decimals) as basis points
    in (0, 10000] — or [0, 10000] with `allow_zero`."""
    raw = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip().removesuffix("%").strip()
    try:
        bp = Decimal(raw) * 100
    except InvalidOperation:
        raise invalid(field, f"{label}应为百分比数字，例如 2 或 2.5") from None
    if not bp.is_finite() or bp != bp.to_integral_value():
        raise invalid(field, f"{label}最多两位小数（单位：%）")
    bp = int(bp)
    if bp < 0 or (bp == 0 and not allow_zero) or bp > BP_PER_UNIT:
        raise invalid(field, f"{label}应在 {'0' if allow_zero else '0.01'}% 到 100% 之间")
    return bp


def choice(value, *, field, label, choices):
    """One of `choices` (a dict of value -> Chinese label, or a sequence)."""
    if value not in choices:
        names = "、".join(choices.values() if isinstance(choices, dict) else choices)
        raise invalid(field, f"{label}只能是 {names} 之一")
    return value


def choice_by_label(value, *, field, label, options, cell=False):
    """One of `options` ({shown text: stored value}, several texts may name one value), by its
    text or by the stored value itself: a spreadsheet's 类型 or 状态 column."""
    raw = text(value, field=field, label=label, max_len=32, cell=cell)
    if raw in options:
        return options[raw]
    if raw in options.values():
        return raw
    raise invalid(field, f"{label}“{raw}”无效，应为：" + "、".join(options))


_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def day(value, *, field, label, required=True, cell=False):
    """A date, or 'YYYY-MM-DD' text; None when optional and empty.

    A cell is a date cell (a datetime at midnight) or text 2026-11-26 / 2026/11/26 /
    2026年11月26日; a blank cell is empty."""
    if value is None or value == "" or (cell and _blank(value)):
        if required:
            raise invalid(field, f"{label}不能为空")
        return None
    if cell:
        return _cell_day(value, field=field, label=label)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise invalid(field, f"{label}格式应为 YYYY-MM-DD")


_MONTH_TEXT = re.compile(r"^(\d{4})\s*(?:-|/|\.|年)\s*(\d{1,2})\s*月?$")


def month(value, *, field, label, required=True, cell=False):
    """A calendar month as the date of its first day: text 2026-11 / 2026/11 / 2026年11月, a
    date (any day of the month) or, in a cell, a date cell; None when optional and empty."""
    if value is None or _blank(value):
        if required:
            raise invalid(field, f"{label}不能为空")
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.replace(day=1)
    match = _MONTH_TEXT.match(unicodedata.normalize("NFKC", str(value)).strip())
    if match and 2000 <= int(match.group(1)) <= 2099 and 1 <= int(match.group(2)) <= 12:
        return date(int(match.group(1)), int(match.group(2)), 1)
    shown = f"“{_shown(value)}”" if cell else ""
    raise invalid(field, f"{label}{shown}格式应为年-月，如 2026-11")


def _cell_day(value, *, field, label):
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise invalid(field, f"{label}应为日期，不带时间")
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = _DATE_TEXT.match(value.strip())
        if match:
            try:
                return date(*(int(g) for g in match.groups()))
            except ValueError:
                raise invalid(field, f"{label}“{value.strip()}”不是有效日期") from None
    raise invalid(field, f"{label}“{_shown(value)}”不是日期，应写成 2026-11-26")
