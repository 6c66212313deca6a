"""Amounts people type (forms, spreadsheets) become integer fen exactly, or a Chinese refusal."""
from decimal import Decimal

import pytest

from app.kernel.money import MAX_INPUT_FEN, format_yuan, parse_yuan


@pytest.mark.parametrize("typed,fen", [
    ("12,345.67", 1_234_567), ("12345.67", 1_234_567), ("¥8000", 800_000), ("￥8,000.5", 800_050),
    ("120万", 120_000_000), ("1.5万", 1_500_000), ("1.2345万", 1_234_500), ("１２３．５", 12_350),
    ("12，345", 1_234_500), (" 0 ", 0), (".5", 50), ("100元", 10_000), ("12.340", 1_234),
    (100, 10_000), (Decimal("3.10"), 310), (0.1, 10), (12345.67, 1_234_567), (Decimal("1E+2"), 10_000),
])
def test_typed_amounts_become_exact_fen(typed, fen):
    assert parse_yuan(typed) == fen


@pytest.mark.parametrize("typed,message", [
    ("", "请输入金额"), ("¥", "请输入金额"), (None, "请输入金额"), (True, "请输入金额"),
    ("1,23", "金额格式无效"), ("1,234,56", "金额格式无效"), ("abc", "金额格式无效"), ("1e5", "金额格式无效"),
    ("1.5万5", "金额格式无效"), (float("nan"), "金额格式无效"), ("9" * 50, "金额格式无效"),
    ("12.345", "最多精确到分"), (0.125, "最多精确到分"), ("1.0000000000000000000000000001", "最多精确到分"),
    ("-3", "不能为负数"), ("99999999999999", "不能超过"), (1e16, "不能超过"),
])
def test_bad_amounts_are_refused_in_chinese(typed, message):
    with pytest.raises(ValueError, match=message):
        parse_yuan(typed)


def test_negative_amounts_only_when_allowed_and_the_ceiling_round_trips():
    assert parse_yuan("-3.5", allow_negative=True) == -350
    assert parse_yuan(format_yuan(MAX_INPUT_FEN)) == MAX_INPUT_FEN
