"""Benchmark: import a 5,000-row price list from Excel on PostgreSQL, beside ceilings measured
in the same run.

    .venv/bin/python bench/import_prices.py [--rows 5000] [--runs 3] [--database-url URL]

It makes a throwaway schema in the database (default: the tests' `test` database at
127.0.0.1), migrates it, seeds a tier, a dealer, a staff member and `--rows` SKUs, builds a
workbook of `--rows` rows with openpyxl and then, per run:

  ceiling  openpyxl read    read_only load + iterate every row (the floor for any import)
  ceiling  bare INSERT      `--rows` rows into price_list_items, one executemany, COMMIT
  preview                   `import_file(apply=False)`: the same flow in a transaction, rolled back
  import, new list          `import_file(apply=True)`: creates the list, 5,000 prices + audit rows
  import, every price changed   the exported list with every price +0.01, imported again
  broken file               the same file plus one bad row at the end: refused, checked unchanged
  console upload            the broken-free changed file POSTed to /console/imports/prices

The schema is dropped at the end (also on error or Ctrl-C). Times are wall-clock seconds
on this machine, medians over `--runs`.
"""
import argparse
import io
import os
import statistics
import sys
import time
import uuid
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET_SECONDS = 10.0


def build_file(rows, name, list_id=None, cents=0, bad_row=False):
    import openpyxl

    from app.imports.prices import COLUMNS

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([c.header for c in COLUMNS])
    for i in range(rows):
        fen = 1000 + i + cents
        sheet.append([list_id, name, "经销商价", "BENCH01", None, date(2026, 1, 1), None, f"BENCH-{i:05d}",
                      None, None, None, f"{fen // 100}.{fen % 100:02d}"])
    if bad_row:
        sheet.append([list_id, name, "经销商价", "BENCH01", None, date(2026, 1, 1), None, "NO-SUCH-SKU",
                      None, None, None, "1.005"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def seed(rows):
    from app.catalog.models import Category, Sku
    from app.dealers.models import Dealer, Region, Tier
    from app.extensions import db
    from app.staff.service import create_staff

    db.session.add(Region(code="440000", name="广东省"))
    tier = Tier(code="bench", name="基准", rank=1)
    category = Category(name="基准")
    db.session.add_all([tier, category])
    db.session.flush()
    db.session.add(Dealer(code="BENCH01", name="基准经销商", tier_id=tier.id, region_code="440000"))
    db.session.execute(Sku.__table__.insert(), [
        {"code": f"BENCH-{i:05d}", "name": f"基准商品{i}", "spec": "500ml", "unit": "箱", "pack_size": 1, "moq": 1,
         "step": 1, "list_price_fen": 2000, "low_stock_qty": 10, "category_id": category.id, "status": "active"}
        for i in range(rows)
    ])
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    return create_staff(username="bench-admin", name="基准管理员", role="admin", password="bench-password-1")


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def log(message):
    print(message, file=sys.stderr, flush=True)


def one_run(app, staff, rows, run):
    import openpyxl
    from sqlalchemy import func, select

    from app.extensions import db
    from app.imports import prices
    from app.imports.sheets import RowsRejected
    from app.pricing.models import PriceList, PriceListItem

    name = f"基准价{run}"
    data = build_file(rows, name)
    out = {}

    def read_only():
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        count = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
        book.close()
        return count

    out["ceiling: openpyxl read"], _ = timed(read_only)

    scratch = PriceList(name=f"scratch{run}", kind="tier", tier_id=db.session.execute(db.text("SELECT id FROM tiers")).scalar(),
                        valid_from=date(2026, 1, 1))
    db.session.add(scratch)
    db.session.commit()
    sku_ids = db.session.execute(db.text("SELECT id FROM skus ORDER BY id")).scalars().all()

    def bare_insert():
        db.session.connection().execute(PriceListItem.__table__.insert(), [
            {"price_list_id": scratch.id, "sku_id": sku_id, "price_fen": 1000} for sku_id in sku_ids])
        db.session.commit()

    out["ceiling: bare INSERT"], _ = timed(bare_insert)

    out["preview (check only)"], preview = timed(
        lambda: prices.import_file(staff=staff, data=data, filename="bench.xlsx", apply=False))
    assert preview.created == rows + 1 and not preview.applied
    out["import, new list"], result = timed(
        lambda: prices.import_file(staff=staff, data=data, filename="bench.xlsx", apply=True))
    assert result.created == rows + 1
    list_id = db.session.execute(select(PriceList.id).where(PriceList.name == name)).scalar_one()

    changed = build_file(rows, name, list_id=list_id, cents=1)
    out["import, every price changed"], result = timed(
        lambda: prices.import_file(staff=staff, data=changed, filename="bench2.xlsx", apply=True))
    assert result.updated == rows, result.summary()

    def snapshot():
        db.session.expire_all()
        return db.session.execute(
            select(func.count(), func.sum(PriceListItem.price_fen)).where(PriceListItem.price_list_id == list_id)
        ).one()

    before = snapshot()
    broken = build_file(rows, name, list_id=list_id, cents=2, bad_row=True)

    def refuse():
        try:
            prices.import_file(staff=staff, data=broken, filename="broken.xlsx", apply=True)
        except RowsRejected as exc:
            return exc.details["errors"]
        raise AssertionError("the broken file was imported")

    out["broken file (refused)"], errors = timed(refuse)
    assert errors[0]["row"] == rows + 2 and snapshot() == before, "a broken file changed something"

    client = app.test_client()
    from tests.helpers import HTML, csrf

    client.post("/console/login", data={"username": "bench-admin", "password": "bench-password-1",
                                        "csrf_token": csrf(client)}, headers=HTML)
    token = csrf(client, "/console/imports")
    changed_again = build_file(rows, name, list_id=list_id, cents=3)

    def upload():
        response = client.post("/console/imports/prices", headers=HTML, content_type="multipart/form-data", data={
            "csrf_token": token, "action": "import", "file": (io.BytesIO(changed_again), "bench3.xlsx")})
        assert response.status_code == 200, response.status_code
        return response

    out["console upload (import)"], _ = timed(upload)
    db.session.expire_all()
    assert snapshot()[1] == before[1] + 2 * rows  # cents=3 against cents=1: 2 fen more each
    log(f"run {run}: " + ", ".join(f"{k} {v:.2f}s" for k, v in out.items()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app import create_app
    from app.config import _database_url
    from app.extensions import db

    base_url = _database_url(args.database_url)
    schema = f"dinghuo_bench_import_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None, "SECRET_KEY": "bench-" + uuid.uuid4().hex,
                          "WECHAT_API_BASE": "http://127.0.0.1:9", "WECOM_API_BASE": "http://127.0.0.1:9"})
        with app.app_context():
            upgrade()
            staff = seed(args.rows)
            results = [one_run(app, staff, args.rows, run) for run in range(1, args.runs + 1)]
            db.session.remove()
            db.engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    print(f"\nExcel price-list import, {args.rows} rows, PostgreSQL, median of {args.runs} run(s) (seconds)")
    print(f"{'what':32} {'median':>8}   runs")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key:32} {statistics.median(values):8.2f}   " + "  ".join(f"{v:.2f}" for v in values))
    worst = max(max(r["import, new list"], r["import, every price changed"], r["console upload (import)"]) for r in results)
    verdict = "met" if worst < TARGET_SECONDS else "NOT met"
    print(f"target: every {args.rows}-row import under {TARGET_SECONDS:.0f} s — slowest {worst:.2f} s: {verdict}")
    print("a broken file changed nothing (checked every run); schema dropped")


if __name__ == "__main__":
    main()
