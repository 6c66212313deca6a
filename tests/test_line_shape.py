"""The priced line's shape is declared once (`app.pricing.service.PricedLine`, its
`stored(...)` fields = `LINE_FIELDS`); every place that stores or shows a line derives from
it or is checked against it here, so a field added to the declaration and missing in the
model, the PostgreSQL write or the API schema fails a test. The order statement composes
inventory's and funds' fragments and writes none of their tables itself."""
import inspect
import re

from sqlalchemy.dialects import postgresql

from app.funds import service as funds
from app.inventory import service as inventory
from app.orders import writing
from app.orders.models import OrderLine
from app.orders.schemas import CartLineOut, OrderLineOut, PricedLineOut
from app.pricing.service import LINE_FIELDS, PricedLine
from miniprogram_api import presenters

# How a declared PostgreSQL array element type shows in the model's compiled column type.
_COLUMN_TYPES = {"bigint": "BIGINT", "integer": "INTEGER", "text": "VARCHAR"}


def a_line():
    return PricedLine(sku_id=7, qty=3, sku_code="SKU-7", name="可乐", spec="330ml", unit="箱",
                      list_price_fen=5000, unit_price_fen=4000, amount_fen=12000, price_source="dealer",
                      price_list_id=3, price_list_name="鑫达专属价", price_list_version=2, available=9)


def test_the_declaration_names_todays_stored_fields():
    assert list(LINE_FIELDS) == ["sku_id", "sku_code", "name", "spec", "unit", "qty", "list_price_fen",
                                 "unit_price_fen", "amount_fen", "price_source",
                                 "price_list_id", "price_list_name", "price_list_version"]
    assert "available" not in LINE_FIELDS  # priced, shown in the cart, never stored


def test_the_order_line_model_has_a_column_of_the_declared_type_for_each_field():
    columns = OrderLine.__table__.c
    for name, sql_type in LINE_FIELDS.items():
        assert name in columns, f"OrderLine has no column {name} (add it with a migration)"
        compiled = columns[name].type.compile(dialect=postgresql.dialect())
        assert compiled.startswith(_COLUMN_TYPES.get(sql_type, sql_type.upper())), (name, compiled, sql_type)


def test_the_postgresql_write_inserts_and_casts_every_field():
    sql = writing.write_order_statement().text
    insert_columns = re.search(r"INSERT INTO order_lines \(([^)]*)\)", sql).group(1)
    ordinality = re.search(r"WITH ORDINALITY AS l\(([^)]*)\)", sql).group(1)
    assert [c.strip() for c in insert_columns.split(",")] == ["order_id", *LINE_FIELDS]
    assert [c.strip() for c in ordinality.split(",")] == [*LINE_FIELDS, "position"]
    for name, sql_type in LINE_FIELDS.items():
        assert f"CAST(:line_{name} AS {sql_type}[])" in sql
        assert f"l.{name}" in sql


def test_the_statement_is_built_once_per_process():
    assert writing.write_order_statement() is writing.write_order_statement()


def test_a_new_declared_field_reaches_the_postgresql_write(monkeypatch):
    monkeypatch.setattr(writing, "LINE_FIELDS", {**LINE_FIELDS, "is_gift": "boolean"})
    sql = writing.write_order_statement.__wrapped__().text  # uncached: built from the patched declaration
    assert "CAST(:line_is_gift AS boolean[])" in sql and "l.is_gift" in sql


def test_the_rows_and_the_presenters_carry_every_field():
    line = a_line()
    expected = {name: getattr(line, name) for name in LINE_FIELDS}
    assert writing.line_values(line) == expected
    assert presenters.priced_line(line) == expected
    assert presenters.order_line(line) == {**expected, "shipped_qty": 0}


def test_the_api_schemas_declare_every_field():
    for schema in (PricedLineOut, CartLineOut, OrderLineOut):
        missing = set(LINE_FIELDS) - set(schema._declared_fields)
        assert not missing, f"{schema.__name__} lacks {sorted(missing)}"
    assert set(PricedLineOut._declared_fields) == set(LINE_FIELDS)  # what `presenters.priced_line` gives


def test_the_order_statement_composes_inventorys_and_funds_fragments():
    sql = writing.write_order_statement().text
    assert inventory.reserve_ctes("new_order") in sql
    assert funds.hold_ctes("new_order") in sql
    own = inspect.getsource(writing)
    for foreign in ("UPDATE stock", "stock_reservations", "credit_accounts", "credit_entries"):
        assert foreign not in own, f"app/orders/writing.py writes {foreign} itself"


def test_the_driver_form_of_the_write_has_a_placeholder_per_bind():
    sql, names = writing._write_order_driver_sql()
    assert writing._write_order_driver_sql() is writing._write_order_driver_sql()  # built once per process
    assert ":" not in re.sub(r"'[^']*'", "", sql).replace("::", "")
    assert sql.count("%s") == len(names)
    assert set(names) == set(writing.write_order_statement().compile().params)
