"""All money arithmetic. Amounts are integer fen; rates are basis points (1 bp = 0.01 %).

The only rounding rule: ROUND_HALF_UP to the fen, once per line. Totals are sums of lines.
"""
from decimal import ROUND_HALF_UP, Decimal

BP_PER_UNIT = 10_000


def line_amount(unit_price_fen: int, qty: int) -> int:
    """Price of a line; integers multiply exactly."""
    return int(unit_price_fen) * int(qty)


def apply_bp(amount_fen: int, rate_bp: int) -> int:
    """`amount_fen × rate_bp / 10000`, rounded half up to the fen."""
    exact = Decimal(int(amount_fen)) * Decimal(int(rate_bp)) / Decimal(BP_PER_UNIT)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_yuan(amount_fen: int) -> str:
    """`123456` -> `'¥1,234.56'` for messages (never for arithmetic)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(int(amount_fen)), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"
