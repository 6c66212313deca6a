"""Excel import and export: price lists and stock round-trip through the console; a bad row
is reported with its row number and reason, and nothing is half-imported."""
import base64
import io
import re
from datetime import date, datetime

import openpyxl
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.kernel.clock import business_today
from app.imports import sheets
from app.imports.sheets import CellError
from app.inventory.models import Stock, StockMovement
from app.pricing.models import PriceList, PriceListItem
from tests.helpers import HTML, csrf
from tests.helpers import console_login as login

PRICE_HEADERS = ["价格表编号", "价格表名称", "类型", "适用对象编码", "适用对象名称", "生效日期", "失效日期",
                 "商品编码", "商品名称", "规格", "目录价（元）", "价格（元）"]
STOCK_HEADERS = ["仓库编码", "仓库名称", "商品编码", "商品名称", "规格", "单位", "在库数量", "已预留", "可用"]


def xlsx(headers, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def read_xlsx(data):
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def upload(client, kind, data, *, action="import", filename="upload.xlsx", **form):
    client_csrf = csrf(client, "/console/imports")
    return client.post(
        f"/console/imports/{kind}",
        data={"csrf_token": client_csrf, "action": action, "file": (io.BytesIO(data), filename), **form},
        headers=HTML, content_type="multipart/form-data",
    )


def price_rows():
    db.session.expire_all()
    return sorted(db.session.execute(
        select(PriceListItem.price_list_id, PriceListItem.sku_id, PriceListItem.price_fen)).all())


def list_rows():
    db.session.expire_all()
    return sorted(db.session.execute(
        select(PriceList.id, PriceList.name, PriceList.kind, PriceList.tier_id, PriceList.dealer_id,
               PriceList.valid_from, PriceList.valid_to)).all())


def stock_rows():
    db.session.expire_all()
    return sorted(db.session.execute(select(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved)).all())


def audit_count():
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def gold_list():
    return db.session.execute(select(PriceList).where(PriceList.name == "金牌价")).scalar_one()


# --- cells ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,fen", [
    ("12.50", 1250), (12.5, 1250), ("¥1,234.00", 123400), ("￥ 8 元", 800), (0, 0), (7, 700), ("50万", 50_000_000),
    (11.000000000000002, 1100), (0.1 + 0.2, 30), ("0.07", 7), (19.99, 1999), ("1234567.89", 123456789),
])
def test_money_cells_become_exact_fen(cell, fen):
    assert sheets.money_fen(cell) == fen


@pytest.mark.parametrize("cell,reason", [
    ("12.505", "最多精确到分"), (12.345, "最多精确到分"), ("-1", "不能为负数"), (-0.01, "不能为负数"),
    ("abc", "金额格式无效"), (None, "不能为空"), ("  ", "不能为空"), (True, "请输入金额"), ("1e3", "金额格式无效"),
    (datetime(2026, 1, 1), "应为金额"), ("99999999999999", "不能超过"),
])
def test_bad_money_cells_are_refused_in_chinese(cell, reason):
    with pytest.raises(CellError, match=reason):
        sheets.money_fen(cell)


@pytest.mark.parametrize("cell,day", [
    (datetime(2026, 11, 26), date(2026, 11, 26)), (date(2026, 1, 2), date(2026, 1, 2)),
    ("2026-11-26", date(2026, 11, 26)), ("2026/1/2", date(2026, 1, 2)), ("2026年11月26日", date(2026, 11, 26)),
])
def test_date_cells(cell, day):
    assert sheets.day(cell, "生效日期") == day


@pytest.mark.parametrize("cell", ["2026-13-01", "2026-02-30", "明天", 46000, datetime(2026, 1, 1, 9, 30)])
def test_bad_date_cells_are_refused(cell):
    with pytest.raises(CellError):
        sheets.day(cell, "生效日期")


# --- price lists ---------------------------------------------------------------------------

def test_price_export_has_chinese_headers_and_yuan_with_two_decimals(client, world, staff):
    login(client, "money")
    r = client.get("/console/imports/prices/export.xlsx", headers=HTML)
    assert r.status_code == 200 and r.mimetype == sheets.XLSX_MIME
    assert "attachment" in r.headers["Content-Disposition"]
    rows = read_xlsx(r.data)
    assert rows[0] == PRICE_HEADERS
    gold = gold_list()
    soy = [row for row in rows[1:] if row[0] == gold.id and row[7] == "SKU-SOY"][0]
    assert soy[1:4] == ["金牌价", "等级价", "gold"] and soy[4] == "金牌"
    assert soy[10] == 25.99 and soy[11] == 22.99
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.worksheets[0].cell(row=2, column=12).number_format == "0.00"
    assert book.sheetnames == ["价格表", "说明"]


def test_exporting_one_list_exports_only_its_items(client, world, staff):
    login(client, "boss")
    gold = gold_list()
    rows = read_xlsx(client.get(f"/console/imports/prices/export.xlsx?list_id={gold.id}", headers=HTML).data)
    assert {row[0] for row in rows[1:]} == {gold.id} and len(rows) == 3
    assert client.get("/console/imports/prices/export.xlsx?list_id=99999", headers=HTML).status_code == 404


def test_price_export_then_import_changes_nothing(client, world, staff):
    login(client, "boss")
    data = client.get("/console/imports/prices/export.xlsx", headers=HTML).data
    before_prices, before_lists, entries = price_rows(), list_rows(), audit_count()
    r = upload(client, "prices", data)
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page
    assert "新增 0，修改 0，未变 5" in page
    assert price_rows() == before_prices and list_rows() == before_lists
    assert audit_count() == entries + 1  # only the import's summary


def test_edited_export_updates_prices_and_creates_a_list(client, world, staff):
    login(client, "boss")
    gold = gold_list()
    rows = read_xlsx(client.get(f"/console/imports/prices/export.xlsx?list_id={gold.id}", headers=HTML).data)
    rows[1][11] = "¥45.10"                      # SKU-COLA 42.00 → 45.10
    rows.append([gold.id, "金牌价", "等级价", "gold", None, rows[1][5], None, "SKU-TEA", None, None, None, 33])
    rows.append([None, "鑫达新价", "经销商价", "DA01", None, "2026-12-01", "2026/12/31", "SKU-VIN", None, None, None, "18.8"])
    r = upload(client, "prices", xlsx(PRICE_HEADERS, rows[1:]))
    assert r.status_code == 200, r.get_data(as_text=True)
    prices = {(pl, sku): fen for pl, sku, fen in price_rows()}
    assert prices[(gold.id, world.cola.id)] == 4510
    assert prices[(gold.id, world.tea.id)] == 3300
    assert prices[(gold.id, world.soy.id)] == 2299           # unchanged row
    new = db.session.execute(select(PriceList).where(PriceList.name == "鑫达新价")).scalar_one()
    assert (new.kind, new.dealer_id, new.valid_from, new.valid_to) == ("dealer", world.dealer_a.id, date(2026, 12, 1), date(2026, 12, 31))
    assert prices[(new.id, world.vinegar.id)] == 1880
    entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    sets = [e for e in entries if e.action == "price.set"]
    assert {(e.before and e.before["price_fen"], e.after["price_fen"]) for e in sets} == {(4200, 4510), (None, 3300), (None, 1880)}
    assert all(e.actor_name == "管理员" and e.reason == "Excel 导入：upload.xlsx" for e in sets)
    summary = [e for e in entries if e.action == "import"][-1]
    assert summary.after == {"file": "upload.xlsx", "rows": 4, "created": 3, "updated": 1, "unchanged": 1}


def test_preview_writes_nothing_and_confirm_imports_the_same_file(client, world, staff):
    login(client, "boss")
    gold = gold_list()
    data = xlsx(PRICE_HEADERS, [[gold.id, "金牌价", "等级价", "gold", None, gold.valid_from, None, "SKU-COLA", None, None, None, 41]])
    before, entries = price_rows(), audit_count()
    r = upload(client, "prices", data, action="preview")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "尚未导入" in page and "将新增 0，修改 1" in page and "¥42.00" in page
    assert price_rows() == before and audit_count() == entries
    payload = re.search(r'name="payload" value="([^"]+)"', page).group(1)
    assert base64.b64decode(payload) == data
    r = client.post("/console/imports/prices", data={
        "csrf_token": csrf(client, "/console/imports"), "action": "import", "payload": payload, "filename": "upload.xlsx"},
        headers=HTML)
    assert r.status_code == 200 and "导入完成" in r.get_data(as_text=True)
    assert {(pl, sku): fen for pl, sku, fen in price_rows()}[(gold.id, world.cola.id)] == 4100


def test_every_bad_price_row_is_reported_and_nothing_changes(client, world, staff):
    login(client, "boss")
    gold = gold_list()
    today = gold.valid_from
    good = [gold.id, "金牌价", "等级价", "gold", None, today, None, "SKU-COLA", None, None, None, 1]
    rows = [
        good,                                                                              # row 2: fine
        [*good[:7], "NOPE", None, None, None, 1],                                          # 3 unknown SKU
        [*good[:7], "SKU-SOY", None, None, None, "12.345"],                                # 4 three decimals
        [*good[:7], "SKU-TEA", None, None, None, -5],                                      # 5 negative
        [*good[:7], "SKU-COLA", None, None, None, 2],                                      # 6 duplicate of row 2
        [None, "新表", "经销商价", "ZZ99", None, today, None, "SKU-COLA", None, None, None, 1],  # 7 unknown dealer
        [None, "新表2", "等级价", "gold", None, "2026-02-30", None, "SKU-COLA", None, None, None, 1],  # 8 bad date
        [None, "新表3", "等级价", "gold", None, "2026-12-31", "2026-12-01", "SKU-COLA", None, None, None, 1],  # 9 ends before start
        [*good[:1], "金牌价", "等级价", "silver", None, today, None, "SKU-VIN", None, None, None, 1],  # 10 list header differs
        [424242, "X", "等级价", "gold", None, today, None, "SKU-COLA", None, None, None, 1],  # 11 unknown list
        [None, "银牌价", "等级价", "silver", None, today, None, "SKU-COLA", None, None, None, 1],  # 12 name of an existing list
        [*good[:2], "批发价", *good[3:]],                                                   # 13 bad type
        [*good[:7], "SKU-VIN", None, None, None, None],                                    # 14 empty price
    ]
    before_prices, before_lists, entries = price_rows(), list_rows(), audit_count()
    r = upload(client, "prices", xlsx(PRICE_HEADERS, rows))
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    expected = {
        3: "商品 NOPE 不存在", 4: "最多精确到分", 5: "不能为负数", 6: "重复（与第 2 行）", 7: "经销商 ZZ99 不存在",
        8: "不是有效日期", 9: "失效日期不能早于生效日期", 10: "适用对象编码与第 2 行不一致", 11: "价格表编号 424242 不存在",
        12: "已有名为“银牌价”的价格表", 13: "类型“批发价”无效", 14: "价格不能为空",
    }
    for row, reason in expected.items():
        assert re.search(rf"第 {row} 行</td><td>[^<]*{re.escape(reason)}", page), (row, reason)
    assert "第 2 行</td>" not in page
    assert price_rows() == before_prices and list_rows() == before_lists and audit_count() == entries


def test_bad_rows_answer_json_with_row_numbers_for_programs(client, world, staff):
    login(client, "boss")
    data = xlsx(PRICE_HEADERS, [[None, "新表", "等级价", "gold", None, "2026-01-01", None, "NOPE", None, None, None, 1]])
    r = client.post("/console/imports/prices", data={"csrf_token": csrf(client, "/console/imports"), "action": "import",
                                                     "file": (io.BytesIO(data), "p.xlsx")})
    assert r.status_code == 422
    assert r.json["error"]["details"]["errors"] == [{"row": 2, "message": "商品 NOPE 不存在"}]


@pytest.mark.parametrize("data,reason", [
    (b"", "请选择要导入的 Excel 文件"),
    (b"code,price\nSKU-COLA,1\n", "不是 Excel 工作簿"),
    (b"PK\x03\x04 broken zip", "不是 Excel 工作簿"),
    (xlsx(["商品编码", "价格"], [["SKU-COLA", 1]]), "缺少列：价格表编号、价格表名称"),
    (xlsx(PRICE_HEADERS, []), "没有数据行"),
    (xlsx([], []), "第一个工作表是空的"),
    (xlsx([*PRICE_HEADERS, "价格（元）"], [[1]]), "表头“价格（元）”出现了两次"),
])
def test_broken_files_are_refused_in_chinese_and_change_nothing(client, world, staff, data, reason):
    login(client, "boss")
    before, entries = price_rows(), audit_count()
    r = upload(client, "prices", data)
    assert r.status_code == 400 and reason in r.get_data(as_text=True)
    assert price_rows() == before and audit_count() == entries


def test_too_many_rows_and_oversized_files_are_refused(client, world, staff, monkeypatch):
    login(client, "boss")
    gold = gold_list()
    row = [gold.id, "金牌价", "等级价", "gold", None, gold.valid_from, None, "SKU-COLA", None, None, None, 1]
    monkeypatch.setattr(sheets, "MAX_ROWS", 3)
    monkeypatch.setattr(sheets.read_sheet, "__kwdefaults__", {"max_rows": 3, "max_bytes": sheets.MAX_BYTES})
    r = upload(client, "prices", xlsx(PRICE_HEADERS, [row] * 4))
    assert r.status_code == 400 and "一次最多导入 3 行" in r.get_data(as_text=True)
    monkeypatch.setattr(sheets.read_sheet, "__kwdefaults__", {"max_rows": 3, "max_bytes": 1000})
    r = upload(client, "prices", xlsx(PRICE_HEADERS, [row]))
    assert r.status_code == 400 and "文件太大" in r.get_data(as_text=True)


def test_an_upload_over_the_request_limit_is_refused_in_chinese(client, world, staff):
    login(client, "boss")
    r = upload(client, "prices", b"x" * (sheets.MAX_BYTES * 2))
    assert r.status_code == 413 and "文件太大" in r.get_data(as_text=True)


def test_unknown_columns_are_ignored_and_named(client, world, staff):
    login(client, "boss")
    gold = gold_list()
    data = xlsx([*PRICE_HEADERS, "备注"], [[gold.id, "金牌价", "等级价", "gold", None, gold.valid_from, None, "SKU-COLA", None, None, None, 42, "x"]])
    r = upload(client, "prices", data, action="preview")
    assert r.status_code == 200 and "已忽略不认识的列：备注" in r.get_data(as_text=True)


# --- roles and CSRF ------------------------------------------------------------------------

def test_a_warehouse_clerk_gets_403_on_price_export_and_import(client, world, staff):
    login(client, "cang")
    assert client.get("/console/imports/prices/export.xlsx", headers=HTML).status_code == 403
    assert client.get("/console/imports/prices/template.xlsx", headers=HTML).status_code == 403
    page = client.get("/console/imports", headers=HTML).get_data(as_text=True)
    assert "价格表" not in page and "库存" in page
    before = price_rows()
    data = xlsx(PRICE_HEADERS, [[None, "新表", "等级价", "gold", None, "2026-01-01", None, "SKU-COLA", None, None, None, 1]])
    assert upload(client, "prices", data).status_code == 403
    assert price_rows() == before


def test_a_rep_exports_prices_but_only_of_their_own_dealers_and_cannot_import(client, world, staff):
    other = PriceList(name="别人的价", kind="dealer", dealer_id=world.dealer_b.id, valid_from=business_today())
    world.dealer_b.rep_id = staff["other_rep"].id
    db.session.add(other)
    db.session.commit()
    login(client, "rep1")
    rows = read_xlsx(client.get("/console/imports/prices/export.xlsx", headers=HTML).data)
    assert "别人的价" not in {row[1] for row in rows}
    assert client.get(f"/console/imports/prices/export.xlsx?list_id={other.id}", headers=HTML).status_code == 404
    data = xlsx(PRICE_HEADERS, [[None, "新表", "等级价", "gold", None, "2026-01-01", None, "SKU-COLA", None, None, None, 1]])
    assert upload(client, "prices", data).status_code == 403


def test_marketing_exports_skus_only_and_signed_out_users_are_sent_to_login(client, world, staff):
    assert client.get("/console/imports/prices/export.xlsx", headers=HTML).status_code == 302
    login(client, "shi")
    page = client.get("/console/imports", headers=HTML).get_data(as_text=True)
    assert "导出 Excel" in page and "上传并检查" not in page
    assert client.get("/console/imports/skus/export.xlsx", headers=HTML).status_code == 200
    for path in ("prices/export.xlsx", "stock/export.xlsx", "dealers/export.xlsx", "skus/template.xlsx"):
        assert client.get(f"/console/imports/{path}", headers=HTML).status_code == 403, path


def test_an_import_without_the_csrf_token_is_refused(client, world, staff):
    login(client, "boss")
    data = xlsx(PRICE_HEADERS, [[None, "新表", "等级价", "gold", None, "2026-01-01", None, "SKU-COLA", None, None, None, 1]])
    before = list_rows()
    r = client.post("/console/imports/prices", data={"action": "import", "file": (io.BytesIO(data), "p.xlsx")}, headers=HTML)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert list_rows() == before


# --- stock --------------------------------------------------------------------------------

def test_stock_export_then_import_changes_nothing(client, world, staff):
    login(client, "cang")
    r = client.get("/console/imports/stock/export.xlsx?warehouse=WH-S", headers=HTML)
    rows = read_xlsx(r.data)
    assert rows[0] == STOCK_HEADERS and {row[0] for row in rows[1:]} == {"WH-S"} and len(rows) == 8
    before, entries = stock_rows(), audit_count()
    r = upload(client, "stock", r.data, reason="盘点")
    assert r.status_code == 200 and "新增 0，修改 0，未变 7" in r.get_data(as_text=True)
    assert stock_rows() == before and audit_count() == entries + 1


def test_stock_import_sets_on_hand_with_a_reason_and_never_below_reserved(client, world, staff):
    from tests.factories import set_stock

    set_stock(world.cola, world.wh_south, 100, reserved=30)
    db.session.commit()
    login(client, "cang")
    rows = [
        ["WH-S", None, "SKU-COLA", None, None, None, 29],     # 2 below reserved
        ["WH-S", None, "SKU-TEA", None, None, None, 80],      # 3 fine
        ["WH-X", None, "SKU-TEA", None, None, None, 1],       # 4 unknown warehouse
        ["WH-S", None, "SKU-TEA", None, None, None, 81],      # 5 duplicate of 3
        ["WH-S", None, "SKU-SOY", None, None, None, 1.5],     # 6 not whole
        ["WH-S", None, "SKU-VIN", None, None, None, -1],      # 7 negative
    ]
    before, entries = stock_rows(), audit_count()
    r = upload(client, "stock", xlsx(STOCK_HEADERS, rows), reason="11 月盘点")
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    for row, reason in {2: "低于已被订单预留的 30", 4: "仓库编码“WH-X”不存在", 5: "与第 3 行重复", 6: "应为整数", 7: "不能小于 0"}.items():
        assert re.search(rf"第 {row} 行</td><td>[^<]*{re.escape(reason)}", page), (row, reason)
    assert stock_rows() == before and audit_count() == entries

    r = upload(client, "stock", xlsx(STOCK_HEADERS, [rows[1], ["WH-E", None, "SKU-TEA", None, None, None, 7],
                                                    ["WH-S", None, "SKU-COLA", None, None, None, 30]]), reason="11 月盘点")
    assert r.status_code == 200, r.get_data(as_text=True)
    on_hand = {(s, w): q for s, w, q, _ in stock_rows()}
    assert on_hand[(world.tea.id, world.wh_south.id)] == 80
    assert on_hand[(world.tea.id, world.wh_east.id)] == 7           # a new stock row
    assert on_hand[(world.cola.id, world.wh_south.id)] == 30        # exactly the reserved units
    adjust = db.session.execute(select(AuditEntry).where(AuditEntry.action == "stock.adjust")).scalars().all()
    assert len(adjust) == 3 and {e.reason for e in adjust} == {"11 月盘点"}
    assert {(e.before["on_hand"], e.after["on_hand"]) for e in adjust} == {(100, 80), (0, 7), (100, 30)}
    movements = db.session.execute(select(StockMovement.on_hand_before, StockMovement.on_hand_after, StockMovement.kind,
                                          StockMovement.reason)).all()
    assert sorted(movements) == [(0, 7, "count", "11 月盘点"), (100, 30, "count", "11 月盘点"), (100, 80, "count", "11 月盘点")]


def test_stock_import_needs_a_reason(client, world, staff):
    login(client, "cang")
    before = stock_rows()
    r = upload(client, "stock", xlsx(STOCK_HEADERS, [["WH-S", None, "SKU-TEA", None, None, None, 1]]))
    assert r.status_code == 400 and "请填写调整原因" in r.get_data(as_text=True)
    assert stock_rows() == before


def test_stock_roles(client, world, staff):
    login(client, "money")
    assert client.get("/console/imports/stock/export.xlsx", headers=HTML).status_code == 403
    login(client, "rep1")
    assert client.get("/console/imports/stock/export.xlsx", headers=HTML).status_code == 200
    before = stock_rows()
    assert upload(client, "stock", xlsx(STOCK_HEADERS, [["WH-S", None, "SKU-TEA", None, None, None, 1]]), reason="x").status_code == 403
    assert stock_rows() == before


# --- SKUs -----------------------------------------------------------------------------------

SKU_HEADERS = ["商品编码", "商品名称", "规格", "单位", "分类", "每箱数量", "起订量", "订购倍数", "目录价（元）", "低库存阈值", "状态", "图片地址"]


def sku_rows():
    from app.catalog.models import Sku

    db.session.expire_all()
    return sorted(db.session.execute(select(Sku.code, Sku.name, Sku.list_price_fen, Sku.moq, Sku.step, Sku.status,
                                            Sku.category_id)).all())


def test_sku_export_then_import_changes_nothing(client, world, staff):
    login(client, "boss")
    r = client.get("/console/imports/skus/export.xlsx", headers=HTML)
    rows = read_xlsx(r.data)
    assert rows[0] == SKU_HEADERS
    cola = [row for row in rows if row[0] == "SKU-COLA"][0]
    assert cola[4] == "饮料" and cola[8] == 48 and cola[10] == "在售"
    before, entries = sku_rows(), audit_count()
    r = upload(client, "skus", r.data)
    assert r.status_code == 200 and "新增 0，修改 0，未变 7" in r.get_data(as_text=True)
    assert sku_rows() == before and audit_count() == entries + 1


def test_sku_import_creates_and_updates_through_the_catalogue_service(client, world, staff):
    login(client, "boss")
    rows = read_xlsx(client.get("/console/imports/skus/export.xlsx", headers=HTML).data)[1:]
    cola = [row for row in rows if row[0] == "SKU-COLA"][0]
    cola[8], cola[10] = "¥50.00", "下架"
    new = ["SKU-NEW", "新品", "1L", "瓶", "调味品", 12, 6, 6, 9.9, 5, "在售", None]
    r = upload(client, "skus", xlsx(SKU_HEADERS, [cola, new]))
    assert r.status_code == 200, r.get_data(as_text=True)
    skus = {row.code: row for row in sku_rows()}
    assert skus["SKU-COLA"].list_price_fen == 5000 and skus["SKU-COLA"].status == "inactive"
    assert skus["SKU-NEW"].list_price_fen == 990 and skus["SKU-NEW"].category_id == world.sauces.id
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "sku")).scalars().all()
    assert sorted(actions) == ["sku.create", "sku.update"]


def test_bad_sku_rows_are_all_reported_and_nothing_changes(client, world, staff):
    login(client, "boss")
    good = ["SKU-A1", "甲", "", "箱", "饮料", 1, 1, 1, 10, 5, "在售", None]
    rows = [
        good,
        ["SKU-A1", "甲二", "", "箱", "饮料", 1, 1, 1, 10, 5, "在售", None],     # 3 duplicate code
        ["SKU-A2", "乙", "", "箱", "家电", 1, 1, 1, 10, 5, "在售", None],       # 4 unknown category
        ["SKU-A3", "丙", "", "箱", "饮料", 1, 5, 2, 10, 5, "在售", None],       # 5 moq not a multiple of step
        ["SKU-A4", "丁", "", "箱", "饮料", 1, 1, 1, "10.001", 5, "在售", None], # 6 price with 3 decimals
        ["SKU-A5", "戊", "", "箱", "饮料", 1, 1, 1, 10, 5, "热卖", None],       # 7 bad status
        ["bad code!", "己", "", "箱", "饮料", 1, 1, 1, 10, 5, "在售", None],    # 8 code with a space
    ]
    before, entries = sku_rows(), audit_count()
    r = upload(client, "skus", xlsx(SKU_HEADERS, rows))
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    for row, reason in {3: "与第 2 行重复", 4: "分类“家电”不存在", 5: "订购倍数", 6: "最多精确到分", 7: "状态“热卖”无效",
                        8: "商品编码只能包含"}.items():
        assert re.search(rf"第 {row} 行</td><td>[^<]*{re.escape(reason)}", page), (row, reason)
    assert sku_rows() == before and audit_count() == entries


def test_sku_roles(client, world, staff):
    login(client, "cang")
    assert client.get("/console/imports/skus/export.xlsx", headers=HTML).status_code == 403  # carries list prices
    login(client, "rep1")
    data = client.get("/console/imports/skus/export.xlsx", headers=HTML).data
    assert upload(client, "skus", data).status_code == 403


# --- dealers ---------------------------------------------------------------------------------

DEALER_HEADERS = ["经销商编码", "经销商名称", "等级", "地区编码", "地区名称", "业务员", "联系人", "联系电话", "账期（天）",
                  "合同开始日期", "合同结束日期", "年度目标（元）", "信用额度（元）", "状态"]


def dealer_rows():
    from app.dealers.models import Dealer
    from app.funds.models import CreditAccount

    db.session.expire_all()
    return sorted(db.session.execute(
        select(Dealer.code, Dealer.name, Dealer.tier_id, Dealer.region_code, Dealer.rep_id, Dealer.contact_phone,
               CreditAccount.credit_limit_fen).outerjoin(CreditAccount, CreditAccount.dealer_id == Dealer.id)).all())


def test_dealer_export_then_import_changes_nothing(client, world, staff):
    login(client, "boss")
    r = client.get("/console/imports/dealers/export.xlsx", headers=HTML)
    rows = read_xlsx(r.data)
    assert rows[0] == DEALER_HEADERS
    a = [row for row in rows if row[0] == "DA01"][0]
    assert a[2] == "gold" and a[5] == "rep1" and a[12] == 100000 and a[13] == "正常"
    before, entries = dealer_rows(), audit_count()
    r = upload(client, "dealers", r.data)
    assert r.status_code == 200 and "新增 0，修改 0，未变 2" in r.get_data(as_text=True), r.get_data(as_text=True)[-3000:]
    assert dealer_rows() == before and audit_count() == entries + 1


def test_dealer_import_creates_updates_and_sets_credit_through_the_dealer_service(client, world, staff):
    login(client, "boss")
    rows = read_xlsx(client.get("/console/imports/dealers/export.xlsx", headers=HTML).data)[1:]
    a = [row for row in rows if row[0] == "DA01"][0]
    a[7], a[12] = "13900000009", "¥120,000.50"
    new = ["DN01", "深圳新店", "silver", "440300", None, "rep1", "赵六", "13700000000", 30, "2026-01-01", "2026-12-31", "50万", 8000, None]
    r = upload(client, "dealers", xlsx(DEALER_HEADERS, [a, new]))
    assert r.status_code == 200, r.get_data(as_text=True)
    dealers = {row.code: row for row in dealer_rows()}
    assert dealers["DA01"].contact_phone == "13900000009" and dealers["DA01"].credit_limit_fen == 12000050
    assert dealers["DN01"].tier_id == world.silver.id and dealers["DN01"].credit_limit_fen == 800000
    actions = db.session.execute(select(AuditEntry.action)).scalars().all()
    assert {"dealer.create", "dealer.update", "credit.limit", "import"} <= set(actions)


def test_bad_dealer_rows_are_all_reported_and_nothing_changes(client, world, staff):
    login(client, "boss")
    rows = [
        ["DN01", "新店甲", "gold", "440300", None, None, None, None, 0, None, None, None, 0, None],   # 2 fine
        ["DN02", "新店乙", "platinum", "440300", None, None, None, None, 0, None, None, None, 0, None],  # 3 unknown tier
        ["DN03", "新店丙", "gold", "999999", None, None, None, None, 0, None, None, None, 0, None],   # 4 unknown region
        ["DN04", "新店丁", "gold", "440300", None, None, None, None, 0, None, None, None, -5, None],  # 5 negative credit
        ["DN01", "新店戊", "gold", "440300", None, None, None, None, 0, None, None, None, 0, None],   # 6 duplicate code
        ["DN05", "新店己", "gold", "440300", None, None, None, None, 0, "2026-05-01", "2026-04-01", None, 0, None],  # 7 dates
        ["DN06", "新店庚", "gold", "440300", None, "nobody", None, None, 0, None, None, None, 0, None],  # 8 unknown rep
    ]
    before, entries = dealer_rows(), audit_count()
    r = upload(client, "dealers", xlsx(DEALER_HEADERS, rows))
    page = r.get_data(as_text=True)
    assert r.status_code == 422, page
    for row in (3, 4, 5, 6, 7, 8):
        assert f"第 {row} 行</td>" in page, row
    assert "第 2 行</td>" not in page
    assert dealer_rows() == before and audit_count() == entries


def test_dealer_roles_follow_the_dealer_service(client, world, staff):
    login(client, "cang")
    assert client.get("/console/imports/dealers/export.xlsx", headers=HTML).status_code == 403
    world.dealer_b.rep_id = staff["other_rep"].id
    db.session.commit()
    login(client, "rep1")
    rows = read_xlsx(client.get("/console/imports/dealers/export.xlsx", headers=HTML).data)
    assert [row[0] for row in rows[1:]] == ["DA01"]  # only the rep's own dealers
    before = dealer_rows()
    a = rows[1]
    a[12] = 999999  # a rep may not change credit
    r = upload(client, "dealers", xlsx(DEALER_HEADERS, [a]))
    assert r.status_code == 422 and "不能修改信用额度" in r.get_data(as_text=True)
    assert dealer_rows() == before
    login(client, "money")
    a[12], a[7] = 2000, rows[1][7]
    r = upload(client, "dealers", xlsx(DEALER_HEADERS, [a]))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {row.code: row for row in dealer_rows()}["DA01"].credit_limit_fen == 200000


# --- size -----------------------------------------------------------------------------------

def make_skus(count):
    from app.catalog.models import Category, Sku

    category = db.session.execute(select(Category)).scalars().first()
    db.session.execute(Sku.__table__.insert(), [
        {"code": f"BULK-{i:05d}", "name": f"批量商品{i}", "spec": "", "unit": "箱", "pack_size": 1, "moq": 1, "step": 1,
         "list_price_fen": 1000 + i, "low_stock_qty": 10, "category_id": category.id, "status": "active"}
        for i in range(count)
    ])
    db.session.commit()


def test_a_5000_row_price_list_imports_correctly(client, world, staff):
    make_skus(5000)
    login(client, "boss")
    rows = [[None, "大客户价", "经销商价", "DA01", None, "2026-01-01", None, f"BULK-{i:05d}", None, None, None,
             f"{i // 100}.{i % 100:02d}"] for i in range(5000)]
    r = upload(client, "prices", xlsx(PRICE_HEADERS, rows))
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    new = db.session.execute(select(PriceList).where(PriceList.name == "大客户价")).scalar_one()
    items = db.session.execute(select(PriceListItem.price_fen).where(PriceListItem.price_list_id == new.id)).scalars().all()
    assert sorted(items) == list(range(5000))
    assert db.session.execute(select(func.count()).where(AuditEntry.action == "price.set")).scalar_one() == 5000
    # The same file again: every row unchanged except the list now exists (name is taken).
    data = client.get(f"/console/imports/prices/export.xlsx?list_id={new.id}", headers=HTML).data
    r = upload(client, "prices", data)
    assert r.status_code == 200 and "未变 5000" in r.get_data(as_text=True)


# --- PostgreSQL: the bulk statements (arrays in) ------------------------------------------

@pytest.mark.postgres
def test_on_postgresql_prices_stock_and_audit_are_written_in_bulk_and_a_bad_file_changes_nothing(pg_client, pg_world):
    from app.staff.service import create_staff
    from tests.factories import set_stock
    from tests.helpers import PASSWORD

    world, client = pg_world, pg_client
    create_staff(username="boss", name="管理员", role="admin", password=PASSWORD)
    set_stock(world.cola, world.wh_south, 100, reserved=30)
    db.session.commit()
    login(client, "boss")
    gold = gold_list()
    rows = read_xlsx(client.get(f"/console/imports/prices/export.xlsx?list_id={gold.id}", headers=HTML).data)[1:]
    rows[0][11] = "43.21"
    rows.append([None, "新表", "等级价", "silver", None, "2026-01-01", None, "SKU-TEA", None, None, None, "9.90"])
    before_prices, entries = price_rows(), audit_count()
    r = upload(client, "prices", xlsx(PRICE_HEADERS, [*rows, [*rows[-1][:7], "SKU-NONE", None, None, None, 1]]))
    assert r.status_code == 422 and price_rows() == before_prices and audit_count() == entries

    r = upload(client, "prices", xlsx(PRICE_HEADERS, rows))
    assert r.status_code == 200, r.get_data(as_text=True)
    prices = {(pl, sku): fen for pl, sku, fen in price_rows()}
    new = db.session.execute(select(PriceList).where(PriceList.name == "新表")).scalar_one()
    assert prices[(gold.id, world.cola.id)] == 4321 and prices[(new.id, world.tea.id)] == 990
    sets = db.session.execute(select(AuditEntry).where(AuditEntry.action == "price.set").order_by(AuditEntry.id)).scalars().all()
    assert [(e.before, e.after, e.actor_name) for e in sets] == [
        ({"sku": "SKU-COLA", "price_fen": 4200}, {"sku": "SKU-COLA", "price_fen": 4321}, "管理员"),
        (None, {"sku": "SKU-TEA", "price_fen": 990}, "管理员"),
    ]

    stock = [["WH-S", None, "SKU-COLA", None, None, None, 31], ["WH-S", None, "SKU-TEA", None, None, None, 5]]
    r = upload(client, "stock", xlsx(STOCK_HEADERS, [*stock, ["WH-S", None, "SKU-SOY", None, None, None, "x"]]), reason="盘点")
    assert r.status_code == 422
    r = upload(client, "stock", xlsx(STOCK_HEADERS, stock), reason="盘点")
    assert r.status_code == 200, r.get_data(as_text=True)
    on_hand = {(s, w): q for s, w, q, _ in stock_rows()}
    assert on_hand[(world.cola.id, world.wh_south.id)] == 31 and on_hand[(world.tea.id, world.wh_south.id)] == 5
