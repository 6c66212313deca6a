"""The dashboard's tables: one definition per figure, drawn under its chart and exported to Excel.

`FIGURES` names every figure the dashboard shows; `table(name, staff, period, month)` computes it
through `app.reports` and answers its title, columns and rows. The page and the .xlsx read the
same rows, so an export has exactly the numbers of the table: amounts are fen (shown as ¥ on the
page, yuan with two decimals in Excel), rates and durations the report's own texts.
"""
from dataclasses import dataclass

from app.imports.sheets import Column, workbook_bytes, yuan_decimal
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import can
from app.reports import cycle, months, targets
from app.reports import service as reports

TEXT, COUNT, FEN = "text", "count", "fen"


@dataclass
class Table:
    name: str
    title: str
    columns: list  # [(header, kind)]
    rows: list     # [tuple in column order]
    note: str = ""

    def cell(self, index, value):
        """A value as the page shows it."""
        kind = self.columns[index][1]
        if value is None or value == "":
            return "—" if kind != TEXT else (value or "")
        return format_yuan(value) if kind == FEN else str(value)

    def xlsx(self):
        columns = [Column(f"c{i}", header, max(10, len(header) * 2 + 2)) for i, (header, _kind) in enumerate(self.columns)]
        rows = [tuple(yuan_decimal(v) if kind == FEN and v is not None else v
                      for v, (_h, kind) in zip(row, self.columns)) for row in self.rows]
        notes = (self.title, self.note) if self.note else ()
        return workbook_bytes(self.title[:31], columns, rows, notes=notes)


def _money(staff, *columns):
    """The columns that carry amounts, kept only for roles with `reports.amounts`."""
    return list(columns) if can(staff, "reports.amounts") else []


def _sales(name, title, key_label, report, staff, qty=False):
    amounts = can(staff, "reports.amounts")
    columns = [(key_label, TEXT), ("订单数（单）", COUNT), *([("数量（件）", COUNT)] if qty else []),
               *_money(staff, ("金额（元）", FEN))]
    rows = [(i["label"], i["order_count"], *([i["qty"]] if qty else []), *([i["amount_fen"]] if amounts else []))
            for i in report["items"]]
    return Table(name, title, columns, rows)


def _growth(staff, month, today):
    report = months.growth(staff=staff, month=month, today=today)
    amounts = can(staff, "reports.amounts")
    against = {"previous": report["mom"], "last_year": report["yoy"]}
    columns = [("期间", TEXT), ("日期", TEXT), ("订单数（单）", COUNT), *_money(staff, ("金额（元）", FEN)),
               ("本月较该期·订单数", TEXT), *_money(staff, ("本月较该期·金额", TEXT))]
    rows = []
    for item in report["items"]:
        g = against.get(item["key"])
        rows.append((item["label"], f"{item['from']} 至 {item['to']}", item["order_count"],
                     *([item["amount_fen"]] if amounts else []),
                     g["count_text"] if g else "", *([g["amount_text"] if g else ""] if amounts else [])))
    note = months.GROWTH_RULE + (f"（本月尚未结束，三期均按 1 日至 {report['through_day']} 日同期比较）"
                                 if report["to_date"] else "")
    return Table("growth", f"{report['month']} 订单环比与同比", columns, rows, note), report


def _coverage(name, staff, month):
    report = months.coverage(staff=staff, month=month)
    items, key_label = (report["items"], "省份") if name == "coverage-region" else (report["by_tier"], "经销商等级")
    columns = [(key_label, TEXT), ("正常经销商（家）", COUNT), ("下单经销商（家）", COUNT), ("覆盖率", TEXT)]
    rows = [(i["label"], i["active"], i["ordered"], i["coverage_text"]) for i in items]
    total = report["total"]
    rows.append(("合计", total["active"], total["ordered"], total["coverage_text"]))
    title = f"{report['month']} 经销商覆盖率（按{'省份' if name == 'coverage-region' else '等级'}）"
    return Table(name, title, columns, rows, months.COVERAGE_RULE), report


def _cycle(staff, month):
    report = cycle.cycle_times(staff=staff, month=month)
    columns = [("环节", TEXT), ("订单数（单）", COUNT), ("中位数", TEXT), ("P90", TEXT)]
    rows = [(i["label"], i["order_count"], i["median_text"], i["p90_text"]) for i in report["items"]]
    return Table("cycle-times", f"{report['month']} 订单周期", columns, rows, cycle.CYCLE_RULE), report


def _rep_attainment(staff, month):
    report = targets.rep_attainment(staff=staff, month=month)
    columns = [("业务员", TEXT), ("目标（元）", FEN), ("订货金额（元）", FEN), ("达成率", TEXT)]
    rows = [(i["label"], i["target_fen"], i["ordered_fen"], i["attainment_text"]) for i in report["items"]]
    return Table("attainment-reps", f"{report['month']} 业务员目标达成", columns, rows, targets.ATTAINMENT_RULE), report


def _dealer_attainment(staff, month, limit):
    report = targets.dealer_attainment(staff=staff, month=month, limit=limit)
    columns = [("经销商编码", TEXT), ("经销商", TEXT), ("业务员", TEXT), ("目标（元）", FEN), ("订货金额（元）", FEN),
               ("达成率", TEXT)]
    rows = [(i["key"], i["label"], i["rep_name"], i["target_fen"], i["ordered_fen"], i["attainment_text"])
            for i in report["items"]]
    return (Table("attainment-dealers", f"{report['month']} 经销商目标达成", columns, rows, targets.ATTAINMENT_RULE),
            report)


# name -> (needs amounts, which selector it follows: "period", "month" or "days")
FIGURES = {
    "daily-sales": (False, "days"),
    "sales-by-region": (False, "period"),
    "sales-by-tier": (False, "period"),
    "top-dealers": (False, "period"),
    "top-skus": (False, "period"),
    "growth": (False, "month"),
    "coverage-region": (False, "month"),
    "coverage-tier": (False, "month"),
    "cycle-times": (False, "month"),
    "attainment-reps": (True, "month"),
    "attainment-dealers": (True, "month"),
}


def table(name, *, staff, period="month", month=None, today=None, dealer_limit=targets.PAGE_LIMIT):
    """(Table, the report it came from) of figure `name`; 404 for an unknown figure."""
    if name not in FIGURES:
        raise DomainError("not_found", "没有这个图表", 404)
    label = reports.PERIODS.get(period, "")
    if name == "daily-sales":
        report = reports.daily_sales(staff=staff, days=30, today=today)
        return Table(name, f"近 30 天每日订单（{report['from']} 至 {report['to']}）",
                     [("日期", TEXT), ("订单数（单）", COUNT), *_money(staff, ("金额（元）", FEN))],
                     [(i["key"], i["order_count"], *([i["amount_fen"]] if can(staff, "reports.amounts") else []))
                      for i in report["items"]]), report
    if name == "sales-by-region":
        report = reports.sales_by_region(staff=staff, period=period, today=today)
        return _sales(name, f"{label}各省份订单", "省份", report, staff), report
    if name == "sales-by-tier":
        report = reports.sales_by_tier(staff=staff, period=period, today=today)
        return _sales(name, f"{label}各等级订单", "经销商等级", report, staff), report
    if name == "top-dealers":
        report = reports.top_dealers(staff=staff, period=period, today=today)
        return _sales(name, f"{label}经销商前 10", "经销商", report, staff), report
    if name == "top-skus":
        report = reports.top_skus(staff=staff, period=period, today=today)
        return _sales(name, f"{label}商品前 10", "商品", report, staff, qty=True), report
    month = month or months.parse_month(None, today=today)
    if name == "growth":
        return _growth(staff, month, today)
    if name in ("coverage-region", "coverage-tier"):
        return _coverage(name, staff, month)
    if name == "cycle-times":
        return _cycle(staff, month)
    if name == "attainment-reps":
        return _rep_attainment(staff, month)
    return _dealer_attainment(staff, month, dealer_limit)
