"""Monthly statements (对账单): issued from the ledger per China calendar month, confirmed or
disputed by the dealer in the mini-program, resolved by finance in the console, exported as
Excel and as a print page."""
import io
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import openpyxl
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.funds import ledger
from app.funds.models import LEDGER_ACCOUNTS, LedgerEntry, Payment
from app.notify.models import DealerMessage
from app.orders.models import Order, Shipment
from app.kernel.clock import BUSINESS_TZ
from app.statements import service as statements
from app.statements.models import Statement, StatementEvent
from tests.factories import add, auth
from tests.helpers import HTML, MP, console_login, csrf, submit

NOV_OVER = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)  # 09:00 on 1 December, China time


@pytest.fixture(autouse=True)
def _late_november(clock):
    """These tests live in late November 2026 (the dealers exist since then; the order in
    `build_month` is placed then), whatever the real date."""
    return clock


def china(*args):
    """A China wall-clock time as the aware UTC instant the ledger stores."""
    return datetime(*args, tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def post_at(dealer_id, at, *movements):
    """Post movements through the ledger as if at `at` (UTC)."""
    with write_transaction() as session:
        balances = ledger.lock_balances(session, dealer_id)
        ledger.post(session, balances, [ledger.Movement(*m) for m in movements], actor=ledger.SYSTEM,
                    actor_type="system", at=at)


def build_month(client, w):
    """Dealer A's movements around November 2026, one of every ref type, in time order.

    receivable: +50,000 order, +20,000 shipment, −30,000 payment, −4,000 refund, +100 adjustment
    prepaid:    10,000 in October; −5,000 order, +7,000 payment at 23:30 on 30 Nov (China)
    rebate:     +8,000 rebate, −3,000 order
    A prepaid +1 at 00:00 on 1 December (China) belongs to December.
    """
    r = submit(client, auth(w.a_buyer), [{"sku_id": w.cola.id, "qty": 1}])
    assert r.status_code == 201, r.get_json()
    order = db.session.execute(select(Order).where(Order.order_no == r.get_json()["order_no"])).scalar_one()
    payment = add(Payment(dealer_id=w.dealer_a.id, order_id=order.id, method="offline", amount_fen=30_000,
                          applied_fen=30_000))
    shipment = add(Shipment(order_id=order.id, seq=1, carrier="顺丰速运", tracking_no="SF1400000001",
                            shipped_by_name="仓管"))
    db.session.commit()
    a = w.dealer_a.id
    post_at(a, china(2026, 10, 31, 23, 59), ("prepaid", 10_000, "adjustment", None, "期初预付款"))
    post_at(a, china(2026, 11, 1, 0, 0), ("receivable", 50_000, "order", order.id, f"订单 {order.order_no} 应付"))
    post_at(a, china(2026, 11, 5, 10, 0), ("receivable", 20_000, "shipment", shipment.id, "发货"))
    post_at(a, china(2026, 11, 10, 9, 0), ("receivable", -30_000, "payment", payment.id, "线下转账"))
    post_at(a, china(2026, 11, 12, 9, 0), ("prepaid", -5_000, "order", order.id, "预付款抵扣"))
    post_at(a, china(2026, 11, 15, 9, 0), ("rebate", 8_000, "rebate", 77, "第三季度返利"))
    post_at(a, china(2026, 11, 16, 9, 0), ("rebate", -3_000, "order", order.id, "返利抵扣"))
    post_at(a, china(2026, 11, 20, 9, 0), ("receivable", -4_000, "refund", 88, "退货退款"))
    post_at(a, china(2026, 11, 25, 9, 0), ("receivable", 100, "adjustment", None, "尾差调整"))
    post_at(a, china(2026, 11, 30, 23, 30), ("prepaid", 7_000, "payment", payment.id, "微信支付转入预付款"))
    post_at(a, china(2026, 12, 1, 0, 0), ("prepaid", 1, "adjustment", None, "12 月的"))
    return SimpleNamespace(order_no=order.order_no)


def issue(month, now=NOV_OVER):
    result = statements.issue_statements(month=month, now=now)
    db.session.expire_all()
    return result


def statement_of(dealer, month):
    db.session.expire_all()
    return db.session.execute(
        select(Statement).where(Statement.dealer_id == dealer.id, Statement.month == month)
    ).scalar_one_or_none()


def ledger_balance_before(dealer_id, account, instant):
    """Replay: the balance after the account's last ledger entry created before `instant`."""
    rows = db.session.execute(
        select(LedgerEntry.amount_fen, LedgerEntry.balance_after_fen)
        .where(LedgerEntry.dealer_id == dealer_id, LedgerEntry.account == account, LedgerEntry.created_at < instant)
        .order_by(LedgerEntry.id)
    ).all()
    balance = 0
    for amount, after in rows:
        balance += amount
        assert after == balance  # the ledger's own continuity
    return balance


def group_totals(statement, account):
    [acc] = [a for a in statements.summarize(statement) if a["account"] == account]
    return {g["category"]: g["total_fen"] for g in acc["groups"]}, acc


# --- issuing --------------------------------------------------------------------------------

def test_november_statement_groups_every_ref_type_by_china_month(client, world):
    seeded = build_month(client, world)
    result = issue("2026-10")
    assert result["failed"] == []
    result = issue("2026-11")
    assert result["failed"] == [] and len(result["created"]) == 2  # A, and B (active, no movements)

    october, november = statement_of(world.dealer_a, "2026-10"), statement_of(world.dealer_a, "2026-11")
    assert (october.closing_prepaid_fen, october.line_count) == (10_000, 1)
    assert november.statement_no == "DZ202611-DA01" and november.status == "pending"
    assert november.line_count == 9  # 1 Nov 00:00 and 30 Nov 23:30 in; 31 Oct 23:59 and 1 Dec 00:00 out

    totals, receivable = group_totals(november, "receivable")
    assert totals == {"orders": 70_000, "payments": -30_000, "rebates": 0, "returns": -4_000, "adjustments": 100,
                      "other": 0}
    assert (receivable["opening_fen"], receivable["closing_fen"]) == (0, 36_100)
    totals, prepaid = group_totals(november, "prepaid")
    assert totals == {"orders": -5_000, "payments": 7_000, "rebates": 0, "returns": 0, "adjustments": 0, "other": 0}
    assert (prepaid["opening_fen"], prepaid["closing_fen"]) == (10_000, 12_000)
    totals, rebate = group_totals(november, "rebate")
    assert totals["rebates"] == 8_000 and totals["orders"] == -3_000 and rebate["closing_fen"] == 5_000

    by_ref = {(line.ref_type, line.account): line for line in november.lines}
    assert by_ref[("order", "receivable")].order_no == seeded.order_no
    assert by_ref[("shipment", "receivable")].order_no == seeded.order_no
    assert by_ref[("payment", "receivable")].order_no == seeded.order_no
    assert by_ref[("rebate", "rebate")].order_no is None
    assert by_ref[("payment", "prepaid")].occurred_at == china(2026, 11, 30, 23, 30)

    empty = statement_of(world.dealer_b, "2026-11")
    assert empty.line_count == 0 and all(empty.closing_fen(a) == 0 for a in LEDGER_ACCOUNTS)


def test_opening_plus_movements_is_closing_and_agrees_with_ledger_replay(client, world):
    build_month(client, world)
    for month in ("2026-10", "2026-11"):
        issue(month)
    october, november = statement_of(world.dealer_a, "2026-10"), statement_of(world.dealer_a, "2026-11")
    for account in LEDGER_ACCOUNTS:
        lines = [line.amount_fen for line in november.lines if line.account == account]
        assert november.opening_fen(account) + sum(lines) == november.closing_fen(account)
        assert november.opening_fen(account) == october.closing_fen(account)  # opening = last closing
        assert november.opening_fen(account) == ledger_balance_before(world.dealer_a.id, account, november.period_start)
        assert november.closing_fen(account) == ledger_balance_before(world.dealer_a.id, account, november.period_end)
        mine = [line for line in november.lines if line.account == account]
        if mine:
            assert mine[-1].balance_after_fen == november.closing_fen(account)


def test_unknown_ref_types_are_shown_as_other():
    assert [statements.category_of(t) for t in ("order", "shipment", "payment", "refund", "rebate", "adjustment",
                                                "transfer")] == [
        "orders", "orders", "payments", "returns", "rebates", "adjustments", "other"]
    line = SimpleNamespace(account="receivable", category="other", amount_fen=5)
    fake = SimpleNamespace(lines=[line], opening_fen=lambda a: 0, closing_fen=lambda a: 5 if a == "receivable" else 0)
    [receivable, *_] = statements.summarize(fake)
    assert receivable["groups"][-1] == {"category": "other", "label": "其他", "total_fen": 5, "lines": [line]}


def test_reissuing_creates_nothing_and_never_changes_a_statement(client, world):
    build_month(client, world)
    issue("2026-11")
    before = statement_of(world.dealer_a, "2026-11")
    statements.confirm_statement(user=world.a_owner, statement_id=before.id)
    snapshot = {c.name: getattr(statement_of(world.dealer_a, "2026-11"), c.name) for c in Statement.__table__.columns}

    again = issue("2026-11")

    assert again["created"] == [] and again["existing"] == 2
    assert db.session.execute(select(func.count()).select_from(Statement)).scalar_one() == 2
    after = statement_of(world.dealer_a, "2026-11")
    assert {c.name: getattr(after, c.name) for c in Statement.__table__.columns} == snapshot
    messages = db.session.execute(select(func.count()).select_from(DealerMessage).where(
        DealerMessage.dealer_id == world.dealer_a.id, DealerMessage.event == "statement_issued")).scalar_one()
    assert messages == 1


def test_suspended_dealers_get_one_only_for_a_month_with_movements(client, world):
    build_month(client, world)
    world.dealer_a.status = "suspended"
    world.dealer_b.status = "suspended"
    db.session.commit()
    issue("2026-11")
    assert statement_of(world.dealer_a, "2026-11") is not None
    assert statement_of(world.dealer_b, "2026-11") is None


def test_a_month_not_over_in_china_or_malformed_is_refused(world):
    with pytest.raises(Exception) as exc:
        statements.issue_statements(month="2026-11", now=datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc))
    assert exc.value.code == "month_not_over" and exc.value.status == 409
    for bad in ("2026-13", "2026-1", "11/2026", ""):
        with pytest.raises(Exception) as exc:
            statements.issue_statements(month=bad)
        assert exc.value.code == "invalid_month"


def test_the_dealer_is_notified_when_its_statement_is_issued(client, world, app):
    app.config["WECHAT_SUBSCRIBE_TEMPLATES"] = {**app.config["WECHAT_SUBSCRIBE_TEMPLATES"],
                                                "statement_issued": "tmpl-statement"}
    client.post(f"{MP}/subscriptions", json={"template_ids_accepted": ["tmpl-statement"]}, headers=auth(world.a_owner))
    build_month(client, world)
    issue("2026-11")
    from app.notify.models import Outbox

    statement = statement_of(world.dealer_a, "2026-11")
    [message] = db.session.execute(select(DealerMessage).where(
        DealerMessage.dealer_id == world.dealer_a.id, DealerMessage.event == "statement_issued")).scalars()
    assert message.ref_type == "statement" and message.ref_id == statement.id and "¥361.00" in message.body
    [row] = db.session.execute(select(Outbox).where(Outbox.event == "statement_issued")).scalars()
    assert row.recipient == world.a_owner.openid
    assert row.payload["data"]["character_string1"]["value"] == "DZ202611-DA01"
    assert row.payload["data"]["amount3"]["value"] == "361.00元"
    assert row.payload["page"] == f"pages/statement/detail?id={statement.id}"


def test_a_ledger_whose_ids_and_times_disagree_is_not_issued(client, world, caplog):
    post_at(world.dealer_a.id, china(2026, 11, 20, 9, 0), ("prepaid", 1_000, "adjustment", None, None))
    post_at(world.dealer_a.id, china(2026, 10, 20, 9, 0), ("prepaid", 500, "adjustment", None, "补记在上月"))
    result = issue("2026-11")
    assert result["failed"] == [world.dealer_a.id]
    assert statement_of(world.dealer_a, "2026-11") is None
    assert statement_of(world.dealer_b, "2026-11") is not None


def test_cli_issues_a_month(client, world, runner):
    post_at(world.dealer_a.id, china(2026, 10, 3, 9, 0), ("prepaid", 1_000, "adjustment", None, None))
    result = runner.invoke(args=["statements", "issue", "--month", "2026-10"])
    assert result.exit_code == 0, result.output
    # A moved money in October; B (created after October, no movements) is owed nothing.
    assert "新出具 1 份" in result.output
    result = runner.invoke(args=["statements", "issue", "--month", "2026-10"])
    assert "新出具 0 份，此前已出具 1 份" in result.output
    bad = runner.invoke(args=["statements", "issue", "--month", "2026/10"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output


def test_the_periodic_job_issues_last_month_after_the_grace(client, world, clock):
    from app import jobs

    assert jobs.PERIODIC_JOBS["monthly-statements"][0] == "app.statements.service.issue_due_statements"
    post_at(world.dealer_a.id, china(2026, 11, 30, 23, 30), ("prepaid", 1_000, "adjustment", None, None))
    clock.set(china(2026, 12, 1, 0, 10))
    assert statements.issue_due_statements() is None  # within the grace after midnight
    assert statement_of(world.dealer_a, "2026-11") is None
    clock.set(china(2026, 12, 1, 1, 0))
    result = statements.issue_due_statements()
    assert result["month"] == "2026-11" and len(result["created"]) == 2
    assert statement_of(world.dealer_a, "2026-11").closing_prepaid_fen == 1_000
    assert statements.issue_due_statements()["created"] == []


# --- mini-program ---------------------------------------------------------------------------

@pytest.fixture
def issued(client, world):
    build_month(client, world)
    issue("2026-10")
    issue("2026-11")
    return SimpleNamespace(oct=statement_of(world.dealer_a, "2026-10"), nov=statement_of(world.dealer_a, "2026-11"),
                           b_nov=statement_of(world.dealer_b, "2026-11"))


def test_dealer_lists_its_statements_newest_first_with_status(client, world, issued):
    r = client.get(f"{MP}/statements", headers=auth(world.a_viewer))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["total"] == 2
    assert [(s["month"], s["status"], s["status_label"]) for s in body["items"]] == [
        ("2026-11", "pending", "待确认"), ("2026-10", "pending", "待确认")]
    page2 = client.get(f"{MP}/statements?page=2&page_size=1", headers=auth(world.a_viewer)).get_json()
    assert [s["month"] for s in page2["items"]] == ["2026-10"]
    assert client.get(f"{MP}/statements?status=confirmed", headers=auth(world.a_viewer)).get_json()["total"] == 0
    assert client.get(f"{MP}/statements?status=nope", headers=auth(world.a_viewer)).status_code == 422


def test_dealer_reads_a_statement_with_accounts_groups_and_a_print_link(client, world, issued):
    r = client.get(f"{MP}/statements/{issued.nov.id}", headers=auth(world.a_viewer))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    receivable = body["accounts"][0]
    assert receivable["account"] == "receivable" and receivable["closing_fen"] == 36_100
    orders = receivable["groups"][0]
    assert (orders["label"], orders["total_fen"], len(orders["lines"])) == ("订货", 70_000, 2)
    page = client.get(body["print_url"].replace("http://localhost", ""))  # no sign-in
    assert page.status_code == 200 and "DZ202611-DA01" in page.get_data(as_text=True)


def test_confirm_then_dispute_is_409_and_confirm_twice_is_harmless(client, world, issued):
    path = f"{MP}/statements/{issued.nov.id}"
    r = client.post(f"{path}/confirm", headers=auth(world.a_buyer))
    assert r.status_code == 200 and r.get_json()["status"] == "confirmed"
    assert client.post(f"{path}/confirm", headers=auth(world.a_buyer)).get_json()["status"] == "confirmed"

    r = client.post(f"{path}/dispute", json={"comment": "金额不对"}, headers=auth(world.a_owner))
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "statement_confirmed" and "已确认" in r.get_json()["error"]["message"]
    assert statement_of(world.dealer_a, "2026-11").status == "confirmed"
    actions = db.session.execute(select(StatementEvent.action).where(StatementEvent.statement_id == issued.nov.id)
                                 .order_by(StatementEvent.id)).scalars().all()
    assert actions == ["issued", "confirmed"]


def test_dispute_needs_a_comment_then_blocks_confirm(client, world, issued):
    path = f"{MP}/statements/{issued.nov.id}"
    for body, status in (({}, 422), ({"comment": ""}, 422), ({"comment": "   "}, 422), ({"comment": "x" * 501}, 422),
                         ({"comment": 5}, 422)):
        r = client.post(f"{path}/dispute", json=body, headers=auth(world.a_owner))
        assert r.status_code == status, (body, r.get_json())
    assert statement_of(world.dealer_a, "2026-11").status == "pending"

    r = client.post(f"{path}/dispute", json={"comment": "11 月 10 日的转账是 3 万 5"}, headers=auth(world.a_owner))
    assert r.status_code == 200 and r.get_json()["status"] == "disputed"
    assert r.get_json()["dispute_comment"] == "11 月 10 日的转账是 3 万 5"

    r = client.post(f"{path}/confirm", headers=auth(world.a_owner))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "statement_disputed"
    assert "异议" in r.get_json()["error"]["message"]
    r = client.post(f"{path}/dispute", json={"comment": "再说一次"}, headers=auth(world.a_owner))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "statement_already_disputed"
    assert statement_of(world.dealer_a, "2026-11").dispute_comment == "11 月 10 日的转账是 3 万 5"


def test_an_unbound_wechat_user_gets_403_on_every_statement_route(client, world, issued):
    from app.dealers.identity import issue_token

    headers = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for method, path, body in [("GET", "/statements", None), *STATEMENT_ROUTES]:
        kwargs = {"headers": headers, **({"json": body} if body else {})}
        r = client.open(MP + path.format(id=issued.nov.id), method=method, **kwargs)
        assert (r.status_code, r.get_json()["error"]["code"]) == (403, "not_bound"), path


def test_a_viewer_reads_but_cannot_confirm_or_dispute(client, world, issued):
    path = f"{MP}/statements/{issued.nov.id}"
    assert client.post(f"{path}/confirm", headers=auth(world.a_viewer)).status_code == 403
    r = client.post(f"{path}/dispute", json={"comment": "不对"}, headers=auth(world.a_viewer))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_role"
    assert statement_of(world.dealer_a, "2026-11").status == "pending"


STATEMENT_ROUTES = [
    ("GET", "/statements/{id}", None),
    ("POST", "/statements/{id}/confirm", None),
    ("POST", "/statements/{id}/dispute", {"comment": "不对"}),
]


@pytest.mark.parametrize("method,path,body", STATEMENT_ROUTES, ids=[r[1] for r in STATEMENT_ROUTES])
def test_another_dealers_statement_answers_404_like_a_missing_one(client, world, issued, method, path, body):
    def probe(ident):
        kwargs = {"headers": auth(world.b_owner)}
        if body is not None:
            kwargs["json"] = body
        return client.open(MP + path.format(id=ident), method=method, **kwargs)

    before = [(s.id, s.status, s.dispute_comment) for s in db.session.execute(select(Statement)).scalars()]
    foreign, missing = probe(issued.nov.id), probe(999_999)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json() == missing.get_json()
    assert foreign.get_json()["error"]["code"] == "statement_not_found"
    db.session.expire_all()
    assert [(s.id, s.status, s.dispute_comment) for s in db.session.execute(select(Statement)).scalars()] == before
    # B's own list holds only B's statement.
    items = client.get(f"{MP}/statements", headers=auth(world.b_owner)).get_json()["items"]
    assert [s["id"] for s in items] == [issued.b_nov.id]


def test_a_print_link_is_the_only_key_and_cannot_be_forged(client, world, issued):
    token = statements.print_token(issued.nov)
    assert client.get(f"/console/statements/shared/{token}").status_code == 200
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/console/statements/shared/{forged}", headers=HTML).status_code == 404
    assert client.get("/console/statements/shared/x", headers=HTML).status_code == 404


# --- console --------------------------------------------------------------------------------

def _dispute(client, world, issued):
    r = client.post(f"{MP}/statements/{issued.nov.id}/dispute", json={"comment": "预付款少了 70 元"},
                    headers=auth(world.a_owner))
    assert r.status_code == 200


@pytest.mark.parametrize("who", ["admin", "finance"])
def test_finance_and_admin_see_the_list_with_disputes_counted(client, world, staff, issued, who):
    _dispute(client, world, issued)
    console_login(client, staff[who].username)
    page = client.get("/console/statements?status=disputed", headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "有异议 1" in text and "DZ202611-DA01" in text and "DZ202611-DB01" not in text
    text = client.get("/console/statements?month=2026-10", headers=HTML).get_data(as_text=True)
    assert "DZ202610-DA01" in text and "DZ202611-DA01" not in text and "有异议 0" in text
    assert client.get("/console/statements?month=2026-13", headers=HTML).status_code == 400
    text = client.get("/console/statements?q=沪联", headers=HTML).get_data(as_text=True)
    assert text.count("DZ2026") == 1 and "DZ202611-DB01" in text
    detail = client.get(f"/console/statements/{issued.nov.id}", headers=HTML).get_data(as_text=True)
    assert "预付款少了 70 元" in detail and "异议已处理" in detail


@pytest.mark.parametrize("who", ["rep", "warehouse", "marketing"])
def test_other_roles_get_403_everywhere(client, world, staff, issued, who):
    _dispute(client, world, issued)
    console_login(client, staff[who].username)
    sid = issued.nov.id
    for path in ("/console/statements", f"/console/statements/{sid}", f"/console/statements/{sid}/export.xlsx",
                 f"/console/statements/{sid}/print"):
        assert client.get(path, headers=HTML).status_code == 403, path
    token = csrf(client, "/console/")
    r = client.post(f"/console/statements/{sid}/resolve", data={"csrf_token": token, "note": "已处理"}, headers=HTML)
    assert r.status_code == 403
    assert statement_of(world.dealer_a, "2026-11").status == "disputed"


def test_finance_resolves_a_dispute_audited_and_the_dealer_may_confirm(client, world, staff, issued):
    _dispute(client, world, issued)
    console_login(client, staff["finance"].username)
    sid = issued.nov.id
    no_csrf = client.post(f"/console/statements/{sid}/resolve", data={"note": "已处理"}, headers=HTML)
    assert no_csrf.status_code == 400
    token = csrf(client, f"/console/statements/{sid}")
    empty = client.post(f"/console/statements/{sid}/resolve", data={"csrf_token": token, "note": " "}, headers=HTML,
                        follow_redirects=True)
    assert "请填写处理说明" in empty.get_data(as_text=True)
    assert statement_of(world.dealer_a, "2026-11").status == "disputed"

    r = client.post(f"/console/statements/{sid}/resolve", data={"csrf_token": token, "note": "11 月 30 日微信支付已入预付款"},
                    headers=HTML)
    assert r.status_code == 302
    statement = statement_of(world.dealer_a, "2026-11")
    assert (statement.status, statement.resolution_note) == ("pending", "11 月 30 日微信支付已入预付款")
    [entry] = db.session.execute(select(AuditEntry).where(AuditEntry.action == "statement.resolve")).scalars()
    assert entry.staff_id == staff["finance"].id and entry.entity_id == str(sid)
    assert entry.after == {"status": "pending", "resolution_note": "11 月 30 日微信支付已入预付款"}
    assert db.session.execute(select(func.count()).select_from(DealerMessage).where(
        DealerMessage.event == "statement_resolved")).scalar_one() == 1
    again = client.post(f"/console/statements/{sid}/resolve", data={"csrf_token": token, "note": "再次"}, headers=HTML,
                        follow_redirects=True)
    assert "没有待处理的异议" in again.get_data(as_text=True)

    r = client.post(f"{MP}/statements/{sid}/confirm", headers=auth(world.a_owner))
    assert r.status_code == 200 and r.get_json()["status"] == "confirmed"
    assert r.get_json()["resolution_note"] == "11 月 30 日微信支付已入预付款"


def test_excel_export_reads_back_with_exact_yuan(client, world, staff, issued):
    console_login(client, staff["finance"].username)
    r = client.get(f"/console/statements/{issued.nov.id}/export.xlsx", headers=HTML)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(r.data))["对账单"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[1][:2] == ["对账单号", "DZ202611-DA01"]
    header = next(i for i, row in enumerate(rows) if row[0] == "账户" and row[1] == "期初余额")
    assert rows[header][2:9] == ["订货", "付款", "返利", "退货退款", "调整", "其他", "期末余额"]
    receivable = rows[header + 1]
    assert receivable[0] == "应收账款"
    assert [Decimal(repr(v)) for v in receivable[1:9]] == [Decimal(x) for x in (
        "0", "700", "-300", "0", "-40", "1", "0", "361")]
    prepaid = rows[header + 2]
    assert Decimal(repr(prepaid[1])) == Decimal(10_000) / 100 and Decimal(repr(prepaid[8])) == Decimal(12_000) / 100
    cell = sheet.cell(row=header + 2, column=2)
    assert cell.number_format == "#,##0.00"
    details = [row for row in rows[header + 4:] if row[0] in ("应收账款", "预付款", "返利") and row[5] is not None]
    assert len(details) == 9
    payment = next(row for row in details if row[2] == "付款" and row[0] == "预付款")
    assert payment[1] == "2026-11-30 23:30" and Decimal(repr(payment[5])) == Decimal("70.00")


def test_print_page_is_ready_for_pdf(client, world, staff, issued):
    console_login(client, staff["admin"].username)
    text = client.get(f"/console/statements/{issued.nov.id}/print", headers=HTML).get_data(as_text=True)
    assert "@media print" in text and "广州鑫达商贸有限公司" in text and "2026 年 11 月" in text
    assert "负责人签字" in text and "经办人签字" in text and "¥361.00" in text


# --- PostgreSQL: replay and concurrent issuing ------------------------------------------------

@pytest.mark.postgres
def test_statement_totals_equal_ledger_replay_and_concurrent_issuing_makes_one_each(pg_app, pg_world, pg_client):
    w = pg_world
    build_month(pg_client, w)
    month_end = china(2026, 12, 1, 0, 0)
    errors = []
    barrier = threading.Barrier(3)

    def run():
        with pg_app.app_context():
            barrier.wait()
            try:
                statements.issue_statements(month="2026-11", now=NOV_OVER)
            except Exception as exc:  # noqa: BLE001  recorded; asserted empty below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.session.expire_all()
    count = db.session.execute(select(Statement.dealer_id, func.count()).group_by(Statement.dealer_id)).all()
    assert sorted(n for _, n in count) == [1, 1]
    assert db.session.execute(select(func.count()).select_from(DealerMessage).where(
        DealerMessage.event == "statement_issued")).scalar_one() == 2
    november = statement_of(w.dealer_a, "2026-11")
    for account in LEDGER_ACCOUNTS:
        lines = sum(line.amount_fen for line in november.lines if line.account == account)
        assert november.opening_fen(account) + lines == november.closing_fen(account)
        assert november.closing_fen(account) == ledger_balance_before(w.dealer_a.id, account, month_end)
        assert november.opening_fen(account) == ledger_balance_before(
            w.dealer_a.id, account, month_end - timedelta(days=30))
    assert db.session.get(Dealer, w.dealer_a.id) is not None


@pytest.mark.postgres
def test_concurrent_confirms_and_disputes_make_exactly_one_transition(pg_app, pg_world, pg_client):
    w = pg_world
    post_at(w.dealer_a.id, china(2026, 11, 3, 9, 0), ("prepaid", 1_000, "adjustment", None, None))
    statements.issue_statements(month="2026-11", now=NOV_OVER)
    sid = statement_of(w.dealer_a, "2026-11").id
    path = f"{MP}/statements/{sid}"
    calls = [("confirm", None)] * 4 + [("dispute", {"comment": f"第 {i} 条异议"}) for i in range(4)]
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    headers = auth(w.a_owner)

    def run(i, action, body):
        client = pg_app.test_client()
        barrier.wait()
        try:
            results[i] = client.post(f"{path}/{action}", headers=headers, **({"json": body} if body else {})).status_code
        except Exception as exc:  # noqa: BLE001  recorded; the assertions below fail on it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    db.session.expire_all()
    statement = statement_of(w.dealer_a, "2026-11")
    events = db.session.execute(select(StatementEvent.action).where(StatementEvent.statement_id == sid)
                                .order_by(StatementEvent.id)).scalars().all()
    assert statement.status in ("confirmed", "disputed")
    assert events == ["issued", statement.status]  # the action names the status it led to
    if statement.status == "confirmed":  # every confirm succeeded (idempotent), every dispute was refused
        assert sorted(results) == [200] * 4 + [409] * 4
    else:  # one dispute won; the confirms and the other disputes were refused
        assert sorted(results) == [200] + [409] * 7
