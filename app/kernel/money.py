"""All money arithmetic. Amounts are integer fen; rates are basis points (1 bp = 0.01 %).

The only rounding rule: ROUND_HALF_UP to the fen, once per line. Totals are sums of lines.
"""
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

BP_PER_UNIT = 10_000


def line_amount(unit_price_fen: int, qty: int) -> int:
    """Price of a line; integers multiply exactly."""
    return int(unit_price_fen) * int(qty)


def apply_bp(amount_fen: int, rate_bp: int) -> int:
    """`amount_fen × rate_bp / 10000`, rounded half up to the fen."""
    exact = Decimal(int(amount_fen)) * Decimal(int(rate_bp)) / Decimal(BP_PER_UNIT)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def share_of(amount_fen: int, part, whole) -> int:
    """`amount_fen × part / whole` (integers or Fractions), rounded half up to the fen, for
    the part of an amount that belongs to part of a whole (e.g. what a partial shipment
    turns into receivable). Computed from cumulative parts, the shares add up exactly."""
    exact = Fraction(amount_fen) * Fraction(part) / Fraction(whole)
    return int((exact * 2 + 1) // 2)


def format_yuan(amount_fen: int) -> str:
    """`123456` -> `'¥1,234.56'` for messages (never for arithmetic)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(int(amount_fen)), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"


# Largest amount a form or spreadsheet may enter: 1,000 亿元 (well inside BIGINT fen).
MAX_INPUT_FEN = 100_000_000_000_00
_YUAN = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+")


def parse_yuan(value, *, allow_negative=False) -> int:
    """An amount typed by a person (`"12,345.67"`, `"¥8000"`, `"50万"`, `"１２３．５"`) or read
    from a spreadsheet cell (int, Decimal, float) -> integer fen, exactly.

    Decimal arithmetic only: a float cell is read through its shortest repr (`0.1` -> `"0.1"`).
    More than two decimals, misplaced thousands separators, text or an amount over
    `MAX_INPUT_FEN` raise `ValueError` with a Chinese message.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError("请输入金额")
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        value = format(value, "f")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("金额格式无效")
    text = unicodedata.normalize("NFKC", value).strip()
    text = text.replace("，", ",").replace(" ", "")
    sign = 1
    if text.startswith("-"):
        sign, text = -1, text[1:]
    text = text.lstrip("¥￥").removesuffix("元")
    scale = Decimal(1)
    if text.endswith("万"):
        scale, text = Decimal(10_000), text[:-1]
    if not text:
        raise ValueError("请输入金额")
    if len(text) > 40 or not _YUAN.fullmatch(text):
        raise ValueError("金额格式无效，例如 12,345.67（最多两位小数）")
    with localcontext(prec=60):  # exact for every text that gets this far
        fen_exact = Decimal(text.replace(",", "")) * scale * 100
    if fen_exact != fen_exact.to_integral_value():
        raise ValueError("金额最多精确到分（两位小数）")
    amount = sign * int(fen_exact)
    if amount < 0 and not allow_negative:
        raise ValueError("金额不能为负数")
    if abs(amount) > MAX_INPUT_FEN:
        raise ValueError(f"金额不能超过 {format_yuan(MAX_INPUT_FEN)}")
    return amount


def fen_to_yuan_text(amount_fen: int, *, trim=False) -> str:
    """`1250` -> `'12.50'`: the value to put back into a form field (no ¥, no commas);
    `trim=True` drops a zero fraction (`1200` -> `'12'`)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(int(amount_fen)), 100)
    return f"{sign}{yuan}" if trim and not fen else f"{sign}{yuan}.{fen:02d}"


def percent_text(rate_bp: int, *, places=None) -> str:
    """Basis points as the percent people type, exact and without trailing zeros:
    `525` -> `'5.25'`, `550` -> `'5.5'`, `1000` -> `'10'` (no float on the way);
    `places=2` keeps both decimals of a fraction (`550` -> `'5.50'`, `1000` -> `'10'`)."""
    whole, rest = divmod(abs(int(rate_bp)), 100)
    sign = "-" if rate_bp < 0 else ""
    fraction = f".{rest:02d}" if places == 2 else f".{rest:02d}".rstrip("0")
    return f"{sign}{whole}" + (fraction if rest else "")
