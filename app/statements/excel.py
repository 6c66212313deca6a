"""A statement as an .xlsx: a summary per account, then every line. Amounts are yuan
numbers made from integer fen by Decimal (never a float computed from money), shown with
two decimals."""
import io

from app.imports.sheets import yuan_decimal
from app.kernel.clock import china_text
from app.statements.service import (
    CATEGORIES,
    CATEGORY_LABELS,
    month_label,
    status_label,
    summarize,
)

MONEY_FORMAT = "#,##0.00"


def statement_workbook(statement, *, brand):
    """The .xlsx bytes of `statement` (one sheet 对账单)."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill

    bold, grey = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "对账单"
    for column, width in zip("ABCDEFGHI", (12, 18, 12, 18, 40, 14, 14, 14, 14), strict=True):
        sheet.column_dimensions[column].width = width

    def money(row, column, fen):
        cell = sheet.cell(row=row, column=column, value=yuan_decimal(fen))
        cell.number_format = MONEY_FORMAT
        return cell

    def header(row, labels):
        for column, label in enumerate(labels, start=1):
            cell = sheet.cell(row=row, column=column, value=label)
            cell.font, cell.fill = bold, grey

    sheet.append([f"{brand} 经销商对账单"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(["对账单号", statement.statement_no, "期间", month_label(statement.month)])
    sheet.append(["经销商", f"{statement.dealer_name}（{statement.dealer_code}）", "状态", status_label(statement.status)])
    sheet.append(["出具时间", china_text(statement.issued_at)])
    sheet.append([])

    accounts = summarize(statement)
    row = sheet.max_row + 1
    header(row, ["账户", "期初余额", *[CATEGORY_LABELS[c] for c in CATEGORIES], "期末余额"])
    for account in accounts:
        row += 1
        sheet.cell(row=row, column=1, value=account["label"])
        money(row, 2, account["opening_fen"])
        totals = {group["category"]: group["total_fen"] for group in account["groups"]}
        for offset, category in enumerate(CATEGORIES):
            money(row, 3 + offset, totals.get(category, 0))
        money(row, 3 + len(CATEGORIES), account["closing_fen"])

    row += 2
    sheet.cell(row=row, column=1, value="明细").font = bold
    row += 1
    header(row, ["账户", "时间（北京时间）", "类别", "订单号", "摘要", "金额", "余额"])
    for account in accounts:
        for line in account["lines"]:
            row += 1
            sheet.cell(row=row, column=1, value=account["label"])
            sheet.cell(row=row, column=2, value=china_text(line.occurred_at))
            sheet.cell(row=row, column=3, value=CATEGORY_LABELS[line.category])
            sheet.cell(row=row, column=4, value=line.order_no or "")
            sheet.cell(row=row, column=5, value=line.note or "").alignment = Alignment(wrap_text=True)
            money(row, 6, line.amount_fen)
            money(row, 7, line.balance_after_fen)
    if statement.dispute_comment:
        row += 2
        sheet.cell(row=row, column=1, value="异议说明").font = bold
        sheet.cell(row=row, column=2, value=statement.dispute_comment)
    if statement.resolution_note:
        row += 1
        sheet.cell(row=row, column=1, value="处理说明").font = bold
        sheet.cell(row=row, column=2, value=statement.resolution_note)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
