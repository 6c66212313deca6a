"""The kernel's input kinds: one definition each for forms (typed values) and spreadsheet cells
(`cell=True`), each keeping the messages people already know from where they type."""
from datetime import date, datetime

import pytest

from app.kernel import inputs
from app.kernel.errors import DomainError


def refusal(parse, value, **kw):
    with pytest.raises(DomainError) as refused:
        parse(value, field="f", **kw)
    assert (refused.value.code, refused.value.status, refused.value.details) == ("invalid_field", 422, {"field": "f"})
    return refused.value.message


@pytest.mark.parametrize(("parse", "value", "kw", "typed", "cell"), [
    (inputs.text, 1001, {"max_len": 8}, "名称应为文字", None),
    (inputs.text, date(2026, 1, 2), {"max_len": 8}, "名称应为文字", "名称应为文字，不是日期"),
    (inputs.integer, "1,200", {}, "名称应为整数", None),
    (inputs.integer, 12.5, {}, "名称应为整数", "名称应为整数，不能有小数"),
    (inputs.integer, "", {}, "名称应为整数", "名称不能为空"),
    (inputs.integer, "abc", {}, "名称应为整数", "名称“abc”应为整数"),
    (inputs.yuan, "1.005", {}, "名称：金额最多精确到分（两位小数）", "名称“1.005”：金额最多精确到分（两位小数）"),
    (inputs.day, "2026/1/2", {}, "名称格式应为 YYYY-MM-DD", None),
    (inputs.day, "明天", {}, "名称格式应为 YYYY-MM-DD", "名称“明天”不是日期，应写成 2026-11-26"),
])
def test_forms_and_cells_share_a_kind_and_keep_their_messages(parse, value, kw, typed, cell):
    assert refusal(parse, value, label="名称", **kw) == typed
    if cell is None:
        assert parse(value, field="f", label="名称", cell=True, **kw) is not None
    else:
        assert refusal(parse, value, label="名称", cell=True, **kw) == cell


def test_a_leading_plus_or_minus_is_a_sign():
    # The stock-adjust field suggests "如 +20 或 -5": both are numbers, typed or in a cell.
    assert inputs.integer("+20", field=None, label="数量") == 20
    assert inputs.integer(" -5 ", field=None, label="数量", minimum=-10) == -5
    assert inputs.integer("+1,200", field=None, label="数量", cell=True) == 1200
    assert refusal(inputs.integer, "++2", label="名称") == "名称应为整数"
    assert refusal(inputs.integer, "+", label="名称") == "名称应为整数"
    assert refusal(inputs.integer, "-3", label="名称") == "名称不能小于 0"


def test_cells_read_what_excel_holds():
    assert inputs.text(1001.0, field=None, label="编码", max_len=8, cell=True) == "1001"
    assert inputs.integer("1,200", field=None, label="数量", cell=True) == 1200
    assert inputs.integer("  ", field=None, label="数量", cell=True, required=False, default=7) == 7
    assert inputs.yuan(11.000000000000002, field=None, label="价格", cell=True) == 1100
    assert inputs.day(datetime(2026, 11, 26), field=None, label="日期", cell=True) == date(2026, 11, 26)
    assert inputs.day("2026年11月26日", field=None, label="日期", cell=True) == date(2026, 11, 26)
    options = {"等级价": "tier", "经销商价": "dealer"}
    assert inputs.choice_by_label("经销商价", field=None, label="类型", options=options) == "dealer"
    assert inputs.choice_by_label("tier", field=None, label="类型", options=options) == "tier"
    assert refusal(inputs.choice_by_label, "别的", label="类型", options=options) == "类型“别的”无效，应为：等级价、经销商价"


@pytest.mark.parametrize(("value", "bp"), [("2", 200), ("2.5%", 250), (" 0.25 ", 25), ("１００", 10_000), (3, 300)])
def test_percent_becomes_basis_points(value, bp):
    assert inputs.percent_bp(value, field="f", label="返利比例") == bp


@pytest.mark.parametrize(("value", "kw", "message"), [
    ("abc", {}, "返利比例应为百分比数字，例如 2 或 2.5"),
    ("2.555", {}, "返利比例最多两位小数（单位：%）"),
    ("0", {}, "返利比例应在 0.01% 到 100% 之间"),
    ("100.01", {}, "返利比例应在 0.01% 到 100% 之间"),
    ("-1", {"allow_zero": True}, "返利比例应在 0% 到 100% 之间"),
])
def test_bad_percentages_are_refused_in_chinese(value, kw, message):
    assert refusal(inputs.percent_bp, value, label="返利比例", **kw) == message
    assert inputs.percent_bp("0", field="f", label="返利比例", allow_zero=True) == 0
