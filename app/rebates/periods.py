"""Rebate periods (返利期间): China calendar periods — a month `2026-11`, a quarter `2026Q4`,
a year `2026` (`parse_period`) — and the same day one year earlier."""
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from app.kernel.errors import DomainError


@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year in China: `key` as typed, `start`..`end` inclusive."""

    kind: str
    year: int
    number: int  # month 1–12, quarter 1–4, 1 for a year

    @property
    def key(self):
        return {"month": f"{self.year}-{self.number:02d}", "quarter": f"{self.year}Q{self.number}",
                "year": f"{self.year}"}[self.kind]

    @property
    def label(self):
        return {"month": f"{self.year}年{self.number}月", "quarter": f"{self.year}年第{self.number}季度",
                "year": f"{self.year}年"}[self.kind]

    @property
    def _months(self):
        return {"month": (self.number, self.number), "quarter": (3 * self.number - 2, 3 * self.number),
                "year": (1, 12)}[self.kind]

    @property
    def start(self):
        return date(self.year, self._months[0], 1)

    @property
    def end(self):
        last = self._months[1]
        following = date(self.year + 1, 1, 1) if last == 12 else date(self.year, last + 1, 1)
        return following - timedelta(days=1)

    def previous(self):
        return Period.containing(self.kind, self.start - timedelta(days=1))

    @staticmethod
    def containing(kind, day):
        number = {"month": day.month, "quarter": (day.month - 1) // 3 + 1, "year": 1}[kind]
        return Period(kind, day.year, number)


_PERIOD = re.compile(r"(\d{4})(?:-(\d{1,2})|[-]?[Qq]([1-4]))?")
PERIOD_HINT = "期间格式应为 2026-11（月）、2026Q4（季度）或 2026（年）"


def parse_period(value):
    """`2026-11` → month, `2026Q4` (or 2026-Q4) → quarter, `2026` → year; anything else is a
    422 `invalid_period` with a Chinese message."""
    raw = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else ""
    match = _PERIOD.fullmatch(raw)
    if not match:
        raise DomainError("invalid_period", f"{PERIOD_HINT}，收到的是 {str(value)[:20]!r}", 422)
    year, month, quarter = int(match.group(1)), match.group(2), match.group(3)
    if not 2000 <= year <= 2099:
        raise DomainError("invalid_period", f"年份应在 2000–2099 之间：{raw}", 422)
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise DomainError("invalid_period", f"月份应为 01–12：{raw}（{PERIOD_HINT}）", 422)
        return Period("month", year, int(month))
    if quarter is not None:
        return Period("quarter", year, int(quarter))
    return Period("year", year, 1)


def year_earlier(day):
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)
