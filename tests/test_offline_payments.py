"""Offline payments (线下转账): the dealer submits a transfer voucher from the mini-program,
finance confirms it into the ledger exactly once (or rejects it), and the finance pages show
payments and a dealer's accounts, with manual adjustments."""
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.funds import accounts, ledger
from app.funds import offline as offline_service
from app.funds.models import CreditAccount, LedgerEntry, OfflinePayment, Payment
from app.kernel.clock import business_today
from app.notify.models import DealerMessage, Outbox
from app.orders import closing as orders
from app.orders.models import Order
from tests.factories import auth
from tests.helpers import HTML, MP, console_login, submit

MISSING_ID = 999_999

# --- helpers ---------------------------------------------------------------------------------


def png(color=(10, 120, 200)):
    out = io.BytesIO()
    Image.new("RGB", (20, 12), color).save(out, format="PNG")
    return out.getvalue()


def upload(client, user, color=(10, 120, 200)):
    r = client.post(f"{MP}/uploads", headers=auth(user), data={"file": (io.BytesIO(png(color)), "v.png", "image/png")},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    return r.json["id"]


def today():
    return business_today()


def pay(client, user, voucher_id, amount_fen=50_000, order_no=None, **extra):
    body = {"amount_fen": amount_fen, "transfer_date": today().isoformat(), "voucher_id": voucher_id, **extra}
    if order_no:
        body["order_no"] = order_no
    return client.post(f"{MP}/payments/offline", headers=auth(user), json=body)


def place_order(client, world, user=None, qty=2):
    """An order paid up front (not on credit) of `qty` cola at dealer A's price (¥40.00 each):
    still wholly due. A WeChat Pay order, the one up-front method main takes so far; a transfer
    may pay any order with something due."""
    r = submit(client, auth(user or world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}], payment_method="wechat")
    assert r.status_code == 201, r.json
    return r.json["order_no"]


def token(client):
    page = client.get("/console/", headers=HTML, follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def balances(dealer):
    db.session.expire_all()
    return ledger.get_balances(dealer.id)


def counts():
    db.session.expire_all()
    return tuple(
        db.session.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (OfflinePayment, Payment, LedgerEntry, AuditEntry, DealerMessage, Outbox)
    )


def record(payment_id):
    db.session.expire_all()
    return db.session.get(OfflinePayment, payment_id)


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


@pytest.fixture
def finance_client(client, staff):
    assert console_login(client, "money").status_code == 302
    return client


# --- the dealer submits ----------------------------------------------------------------------

def test_a_dealer_submits_a_voucher_for_an_order_and_follows_it(clock, client, world):
    # The kernel clock stands still, so the two reads below sign their voucher URLs alike.
    order_no = place_order(client, world)
    voucher = upload(client, world.a_buyer)
    r = pay(client, world.a_buyer, voucher, 8000, order_no=order_no, payer_name=" 广州鑫达商贸 ",
            bank_reference="ICBC20261127001", remark="货款")
    assert r.status_code == 201, r.json
    body = r.json
    assert body["status"] == "pending" and body["status_label"] == "待确认"
    assert (body["amount_fen"], body["received_fen"], body["order_no"]) == (8000, None, order_no)
    assert body["transfer_date"] == today().isoformat()
    assert (body["payer_name"], body["bank_reference"], body["remark"]) == ("广州鑫达商贸", "ICBC20261127001", "货款")
    assert body["voucher"]["id"] == voucher and body["voucher"]["url"].startswith("http://localhost/files/")
    assert client.get(body["voucher"]["url"].replace("http://localhost", "")).data == png()
    # Nothing moves until finance confirms.
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 0, "rebate_fen": 0}
    assert order_row(order_no).paid_fen == 0
    listed = client.get(f"{MP}/payments/offline", headers=auth(world.a_owner)).json
    assert listed["total"] == 1 and listed["items"][0] == body
    assert client.get(f"{MP}/payments/offline/{body['id']}", headers=auth(world.a_viewer)).json == body
    assert client.get(f"{MP}/payments/offline?status=confirmed", headers=auth(world.a_owner)).json["total"] == 0


def test_a_deposit_names_no_order(client, world):
    r = pay(client, world.a_owner, upload(client, world.a_owner), 123_456)
    assert r.status_code == 201, r.json
    assert r.json["order_no"] is None and r.json["payer_name"] is None


@pytest.mark.parametrize("change, field", [
    ({"amount_fen": 0}, "amount_fen"),
    ({"amount_fen": -100}, "amount_fen"),
    ({"amount_fen": "100"}, "amount_fen"),
    ({"amount_fen": 12.5}, "amount_fen"),
    ({"amount_fen": 10**13 + 1}, "amount_fen"),
    ({"transfer_date": "2026/11/01"}, "transfer_date"),
    ({"transfer_date": "昨天"}, "transfer_date"),
    ({"voucher_id": None}, "voucher_id"),
    ({"voucher_id": "1"}, "voucher_id"),
    ({"order_no": "SO-1; DROP"}, "order_no"),
    ({"remark": "x" * 201}, "remark"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_fields_answer_422_and_write_nothing(client, world, change, field):
    voucher = upload(client, world.a_buyer)
    before = counts()
    body = {"amount_fen": 100, "transfer_date": today().isoformat(), "voucher_id": voucher, **change}
    r = client.post(f"{MP}/payments/offline", headers=auth(world.a_buyer), json=body)
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["details"]["fields"]
    assert counts() == before


@pytest.mark.parametrize("days, code", [(-1, "transfer_date_in_future"), (367, "transfer_date_too_old")])
def test_transfer_dates_in_the_future_or_over_a_year_ago_are_refused(client, world, days, code):
    voucher = upload(client, world.a_buyer)
    before = counts()
    r = pay(client, world.a_buyer, voucher, transfer_date=(today() - timedelta(days=days)).isoformat())
    assert r.status_code == 422 and r.json["error"]["code"] == code
    assert "转账日期" in r.json["error"]["message"]
    assert counts() == before
    # A year ago is still fine.
    assert pay(client, world.a_buyer, voucher, transfer_date=(today() - timedelta(days=365)).isoformat()).status_code == 201


def test_another_dealers_voucher_order_or_submission_is_a_404_like_a_missing_one(client, world):
    a_voucher = upload(client, world.a_buyer)
    a_order = place_order(client, world)
    mine = pay(client, world.a_buyer, a_voucher, order_no=a_order).json
    b_voucher = upload(client, world.b_owner)
    before = counts()

    foreign_voucher = pay(client, world.b_owner, a_voucher)
    missing_voucher = pay(client, world.b_owner, MISSING_ID)
    assert foreign_voucher.status_code == missing_voucher.status_code == 404
    assert foreign_voucher.json == missing_voucher.json
    assert foreign_voucher.json["error"]["code"] == "upload_not_found"

    foreign_order = pay(client, world.b_owner, b_voucher, order_no=a_order)
    missing_order = pay(client, world.b_owner, b_voucher, order_no="SO209901019999")
    assert foreign_order.status_code == missing_order.status_code == 404
    assert foreign_order.json == missing_order.json and foreign_order.json["error"]["code"] == "order_not_found"

    foreign = client.get(f"{MP}/payments/offline/{mine['id']}", headers=auth(world.b_owner))
    missing = client.get(f"{MP}/payments/offline/{MISSING_ID}", headers=auth(world.b_owner))
    assert foreign.status_code == missing.status_code == 404 and foreign.json == missing.json
    assert foreign.json["error"]["code"] == "offline_payment_not_found"
    assert client.get(f"{MP}/payments/offline", headers=auth(world.b_owner)).json["total"] == 0
    assert counts() == before


def test_an_unbound_wechat_user_gets_403_not_bound_on_every_offline_payment_route(client, world):
    from app.dealers.identity import issue_token

    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer)).json
    headers = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for method, path, body in [
        ("GET", f"{MP}/payments/offline/{submitted['id']}", None), ("GET", f"{MP}/payments/offline", None),
        ("POST", f"{MP}/payments/offline", {"amount_fen": 1, "transfer_date": today().isoformat(),
                                           "voucher_id": submitted["voucher"]["id"]}),
    ]:
        r = client.open(path, method=method, headers=headers, json=body)
        assert (r.status_code, r.json["error"]["code"]) == (403, "not_bound"), path


def test_a_viewer_cannot_submit(client, world):
    voucher = upload(client, world.a_buyer)
    before = counts()
    r = pay(client, world.a_viewer, voucher)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_role"
    assert counts() == before


def test_one_voucher_backs_one_transfer_until_it_is_rejected(client, world, staff):
    voucher = upload(client, world.a_buyer)
    first = pay(client, world.a_buyer, voucher).json
    again = pay(client, world.a_owner, voucher)
    assert again.status_code == 409 and again.json["error"]["code"] == "voucher_in_use"
    offline_service.reject_offline_payment(staff=staff["finance"], payment_id=first["id"], reason="金额不符")
    assert pay(client, world.a_buyer, voucher, 49_000).status_code == 201


def test_a_cancelled_or_paid_up_order_cannot_be_paid(client, world, staff):
    order_no = place_order(client, world)
    orders.cancel_order(user=world.a_buyer, order_no=order_no)
    r = pay(client, world.a_buyer, upload(client, world.a_buyer), order_no=order_no)
    assert r.status_code == 409 and r.json["error"]["code"] == "order_not_payable"

    paid = place_order(client, world)
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer, (1, 2, 3)), 8000, order_no=paid).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"])
    r = pay(client, world.a_buyer, upload(client, world.a_buyer, (3, 2, 1)), order_no=paid)
    assert r.status_code == 409 and r.json["error"]["code"] == "order_already_paid"


# --- finance confirms or rejects ---------------------------------------------------------------

def test_confirming_a_deposit_credits_prepaid_once_and_tells_the_dealer(client, world, staff, finance_client):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 50_000, bank_reference="CMB998").json
    page = finance_client.get("/console/finance/offline", headers=HTML).get_data(as_text=True)
    assert "广州鑫达商贸有限公司" in page and "¥500.00" in page and "CMB998" in page
    detail = finance_client.get(f"/console/finance/offline/{submitted['id']}", headers=HTML).get_data(as_text=True)
    assert "转账凭证" in detail and "/files/uploads/" in detail and "回款（未指定订单" in detail

    r = finance_client.post(f"/console/finance/offline/{submitted['id']}/confirm",
                            data={"csrf_token": token(finance_client), "received": "", "note": "已到账"}, headers=HTML)
    assert r.status_code == 302
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 50_000, "rebate_fen": 0}
    payment = db.session.execute(select(Payment).where(Payment.offline_payment_id == submitted["id"])).scalar_one()
    assert (payment.method, payment.amount_fen, payment.applied_fen, payment.order_id) == ("offline", 50_000, 0, None)
    entry = db.session.execute(select(LedgerEntry).where(LedgerEntry.dealer_id == world.dealer_a.id)).scalar_one()
    assert (entry.account, entry.amount_fen, entry.ref_type, entry.ref_id) == ("prepaid", 50_000, "payment", payment.id)
    assert entry.actor_name == "财务" and entry.actor_type == "staff"
    row = record(submitted["id"])
    assert (row.status, row.received_fen, row.decision_note, row.decided_by_id) == (
        "confirmed", 50_000, "已到账", staff["finance"].id)
    audit = db.session.execute(select(AuditEntry).where(AuditEntry.action == "payment.offline_confirm")).scalar_one()
    assert audit.entity_id == str(submitted["id"]) and audit.after["payment_id"] == payment.id
    message = db.session.execute(select(DealerMessage).where(DealerMessage.event == "payment_confirmed")).scalar_one()
    assert message.dealer_id == world.dealer_a.id and "¥500.00" in message.body and message.ref_type == "offline_payment"
    seen = client.get(f"{MP}/payments/offline/{submitted['id']}", headers=auth(world.a_buyer)).json
    assert (seen["status"], seen["status_label"], seen["received_fen"]) == ("confirmed", "已确认", 50_000)

    # A second confirmation (a double click, a second clerk) changes nothing.
    before = counts()
    again = finance_client.post(f"/console/finance/offline/{submitted['id']}/confirm",
                                data={"csrf_token": token(finance_client)}, headers=HTML)
    assert again.status_code == 409 and "已确认" in again.get_data(as_text=True)
    assert counts() == before and balances(world.dealer_a)["prepaid_fen"] == 50_000


def test_a_transfer_naming_no_order_first_repays_what_the_dealer_owes_on_credit(client, world, staff):
    """The dealer owes ¥300.00 on credit (shipped credit orders): a ¥500.00 transfer with no
    order clears the receivable (回款) and the remaining ¥200.00 is a deposit."""
    ledger.record_movements(dealer_id=world.dealer_a.id, actor=staff["finance"], actor_type="staff",
                            movements=[ledger.Movement("receivable", 30_000, "adjustment", None, "账期欠款")])
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 50_000).json
    _, payment = offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"])
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 20_000, "rebate_fen": 0}
    entries = db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.ref_type, LedgerEntry.ref_id)
        .where(LedgerEntry.ref_type == "payment").order_by(LedgerEntry.id)
    ).all()
    assert entries == [("receivable", -30_000, "payment", payment.id), ("prepaid", 20_000, "payment", payment.id)]
    # Owing less than nothing (paid ahead) is not repaid again: all of the next one is a deposit.
    second = pay(client, world.a_buyer, upload(client, world.a_buyer, (7, 7, 7)), 1_000).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=second["id"])
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 21_000, "rebate_fen": 0}


def test_confirming_an_order_payment_pays_the_order_and_the_excess_goes_to_prepaid(client, world, staff):
    order_no = place_order(client, world, qty=3)  # ¥120.00
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 10_000, order_no=order_no).json
    # Finance saw ¥150.00 arrive: ¥120.00 pays the order, ¥30.00 goes to prepaid.
    _, payment = offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"],
                                                         received_fen=15_000)
    order = order_row(order_no)
    assert order.paid_fen == 12_000
    assert (payment.amount_fen, payment.applied_fen, payment.order_id) == (15_000, 12_000, order.id)
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 3_000, "rebate_fen": 0}
    entries = db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.ref_type).order_by(LedgerEntry.id)
    ).all()
    assert entries == [("receivable", 12_000, "order"), ("receivable", -12_000, "payment"), ("prepaid", 3_000, "payment")]
    seen = client.get(f"{MP}/payments/offline/{submitted['id']}", headers=auth(world.a_buyer)).json
    assert (seen["amount_fen"], seen["received_fen"]) == (10_000, 15_000)
    order_json = client.get(f"{MP}/orders/{order_no}", headers=auth(world.a_buyer)).json
    assert order_json["totals"]["paid_fen"] == 12_000
    message = db.session.execute(select(DealerMessage).where(DealerMessage.event == "payment_confirmed")).scalar_one()
    assert order_no in message.body and "¥150.00" in message.body and "¥100.00" in message.body


def test_a_partial_transfer_pays_part_of_the_order(client, world, staff):
    order_no = place_order(client, world, qty=3)  # ¥120.00
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 5_000, order_no=order_no).json
    offline_service.confirm_offline_payment(staff=staff["admin"], payment_id=submitted["id"])
    assert order_row(order_no).paid_fen == 5_000
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": 0, "rebate_fen": 0}
    # The rest may be paid by another transfer.
    assert pay(client, world.a_buyer, upload(client, world.a_buyer, (9, 9, 9)), 7_000, order_no=order_no).status_code == 201


def test_an_order_cancelled_before_confirmation_sends_the_money_to_prepaid(client, world, staff):
    order_no = place_order(client, world)
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 8_000, order_no=order_no).json
    orders.cancel_order(user=world.a_buyer, order_no=order_no)
    _, payment = offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"])
    assert payment.applied_fen == 0 and order_row(order_no).paid_fen == 0
    assert balances(world.dealer_a)["prepaid_fen"] == 8_000


def test_rejecting_writes_no_ledger_and_tells_the_dealer_why(client, world, staff, finance_client):
    order_no = place_order(client, world)
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 8_000, order_no=order_no).json
    missing_reason = finance_client.post(f"/console/finance/offline/{submitted['id']}/reject",
                                         data={"csrf_token": token(finance_client), "reason": "  "}, headers=HTML)
    assert missing_reason.status_code == 422 and "原因" in missing_reason.get_data(as_text=True)
    assert record(submitted["id"]).status == "pending"

    r = finance_client.post(f"/console/finance/offline/{submitted['id']}/reject",
                            data={"csrf_token": token(finance_client), "reason": "银行未到账"}, headers=HTML)
    assert r.status_code == 302
    assert db.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0
    assert order_row(order_no).paid_fen == 0
    seen = client.get(f"{MP}/payments/offline/{submitted['id']}", headers=auth(world.a_buyer)).json
    assert (seen["status"], seen["status_label"], seen["reason"]) == ("rejected", "已驳回", "银行未到账")
    message = db.session.execute(select(DealerMessage).where(DealerMessage.event == "payment_rejected")).scalar_one()
    assert "银行未到账" in message.body
    assert db.session.execute(select(AuditEntry).where(AuditEntry.action == "payment.offline_reject")).scalar_one()
    # Decided: neither confirm nor reject again.
    confirm = finance_client.post(f"/console/finance/offline/{submitted['id']}/confirm",
                                  data={"csrf_token": token(finance_client)}, headers=HTML)
    assert confirm.status_code == 409 and "已驳回" in confirm.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0


def test_a_bad_received_amount_is_refused_on_the_page(client, world, finance_client):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer)).json
    before = counts()
    for typed in ("abc", "0", "-5", "1.234"):
        r = finance_client.post(f"/console/finance/offline/{submitted['id']}/confirm",
                                data={"csrf_token": token(finance_client), "received": typed}, headers=HTML)
        assert r.status_code == 422, typed
        assert "实收金额" in r.get_data(as_text=True)
    assert counts() == before


def test_a_subscribe_message_is_queued_when_the_brand_configured_a_template(client, app, world, staff):
    app.config["WECHAT_SUBSCRIBE_TEMPLATES"] = {**app.config["WECHAT_SUBSCRIBE_TEMPLATES"],
                                                "payment_confirmed": "tmpl-paid"}
    r = client.post(f"{MP}/subscriptions", headers=auth(world.a_buyer), json={"template_ids_accepted": ["tmpl-paid"]})
    assert r.status_code == 200, r.json
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 50_000).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"], received_fen=49_950)
    row = db.session.execute(select(Outbox).where(Outbox.event == "payment_confirmed")).scalar_one()
    assert row.channel == "mp_subscribe" and row.recipient == world.a_buyer.openid
    assert (row.ref_type, row.ref_id) == ("offline_payment", submitted["id"])
    assert row.payload["page"] == f"pages/payment/offline?id={submitted['id']}"
    assert row.payload["data"]["amount1"]["value"] == "499.50元"
    assert row.payload["data"]["phrase2"]["value"] == "已确认到账"


# --- roles and CSRF ------------------------------------------------------------------------------

PAGES = ["/console/finance/offline", "/console/finance/offline/{id}", "/console/finance/payments",
         "/console/finance/accounts/{dealer}"]


@pytest.mark.parametrize("username", ["rep1", "cang", "shi"])
def test_other_roles_get_403_on_every_finance_page_and_form(client, world, staff, username):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer)).json
    assert console_login(client, username).status_code == 302
    for path in PAGES:
        r = client.get(path.format(id=submitted["id"], dealer=world.dealer_a.id), headers=HTML)
        assert r.status_code == 403, path
    before = counts()
    csrf_token = token(client)
    for path, data in [
        (f"/console/finance/offline/{submitted['id']}/confirm", {}),
        (f"/console/finance/offline/{submitted['id']}/reject", {"reason": "x"}),
        (f"/console/finance/accounts/{world.dealer_a.id}/adjust", {"account": "prepaid", "amount": "1", "reason": "x"}),
    ]:
        assert client.post(path, data={"csrf_token": csrf_token, **data}, headers=HTML).status_code == 403, path
    assert counts() == before
    assert "/console/finance/offline" not in client.get("/console/", headers=HTML).get_data(as_text=True)


@pytest.mark.parametrize("username", ["money", "boss"])
def test_finance_and_admin_open_every_finance_page(client, world, staff, username):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer)).json
    assert console_login(client, username).status_code == 302
    for path in PAGES:
        assert client.get(path.format(id=submitted["id"], dealer=world.dealer_a.id), headers=HTML).status_code == 200
    assert "/console/finance/offline" in client.get("/console/", headers=HTML).get_data(as_text=True)


def test_posts_without_the_csrf_token_are_refused(client, world, finance_client):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer)).json
    before = counts()
    for path, data in [
        (f"/console/finance/offline/{submitted['id']}/confirm", {}),
        (f"/console/finance/offline/{submitted['id']}/reject", {"reason": "x"}),
        (f"/console/finance/accounts/{world.dealer_a.id}/adjust", {"account": "prepaid", "amount": "1", "reason": "x"}),
    ]:
        r = finance_client.post(path, data=data, headers=HTML)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
    assert counts() == before and record(submitted["id"]).status == "pending"


@pytest.mark.parametrize("query", ["status=paid", "from=2026-13-01", "dealer=abc", "page=0"])
def test_bad_list_filters_answer_400(finance_client, query):
    assert finance_client.get(f"/console/finance/offline?{query}", headers=HTML).status_code == 400


def test_unknown_ids_on_finance_pages_are_404(finance_client):
    assert finance_client.get(f"/console/finance/offline/{MISSING_ID}", headers=HTML).status_code == 404
    assert finance_client.get(f"/console/finance/accounts/{MISSING_ID}", headers=HTML).status_code == 404


def test_the_offline_list_filters_by_status_dealer_and_day(client, world, staff, finance_client):
    a = pay(client, world.a_buyer, upload(client, world.a_buyer), 11_100).json
    b = pay(client, world.b_owner, upload(client, world.b_owner), 22_200).json
    offline_service.reject_offline_payment(staff=staff["finance"], payment_id=b["id"], reason="重复提交")

    def listed(query):
        page = finance_client.get(f"/console/finance/offline?{query}", headers=HTML).get_data(as_text=True)
        return {amount for amount in ("¥111.00", "¥222.00") if amount in page}

    assert listed("") == {"¥111.00"}  # pending by default
    assert listed("status=all") == {"¥111.00", "¥222.00"}
    assert listed("status=rejected") == {"¥222.00"}
    assert listed(f"status=all&dealer={world.dealer_b.id}") == {"¥222.00"}
    assert listed("status=all&q=DA01") == {"¥111.00"}
    day = today().isoformat()
    assert listed(f"status=all&from={day}&to={day}") == {"¥111.00", "¥222.00"}
    assert listed(f"status=all&to={(today() - timedelta(days=1)).isoformat()}") == set()
    assert a["id"] != b["id"]


# --- payments and accounts ---------------------------------------------------------------------

def test_the_payments_page_lists_every_method_with_filters(client, world, staff, finance_client):
    deposit = pay(client, world.a_buyer, upload(client, world.a_buyer), 30_000).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=deposit["id"])
    order_no = place_order(client, world)
    other = pay(client, world.b_owner, upload(client, world.b_owner), 45_600).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=other["id"])
    page = finance_client.get("/console/finance/payments", headers=HTML).get_data(as_text=True)
    assert "¥300.00" in page and "¥456.00" in page and "线下转账" in page and f"线下付款 #{deposit['id']}" in page
    only_a = finance_client.get(f"/console/finance/payments?dealer={world.dealer_a.id}", headers=HTML).get_data(as_text=True)
    assert "¥300.00" in only_a and "¥456.00" not in only_a
    wechat = finance_client.get("/console/finance/payments?method=wechat", headers=HTML).get_data(as_text=True)
    assert "¥300.00" not in wechat and "没有符合条件的收款" in wechat
    assert finance_client.get("/console/finance/payments?method=cash", headers=HTML).status_code == 400
    assert order_no


def test_the_accounts_page_shows_balances_credit_and_the_ledger(client, world, staff, finance_client):
    submitted = pay(client, world.a_buyer, upload(client, world.a_buyer), 30_000).json
    offline_service.confirm_offline_payment(staff=staff["finance"], payment_id=submitted["id"])
    ledger.record_movements(dealer_id=world.dealer_a.id, movements=[ledger.Movement("rebate", 1_234, "adjustment")],
                            actor=staff["finance"], actor_type="staff")
    page = finance_client.get(f"/console/finance/accounts/{world.dealer_a.id}", headers=HTML).get_data(as_text=True)
    assert "¥300.00" in page and "¥12.34" in page and "¥100,000.00" in page  # prepaid, rebate, credit limit
    assert f"线下转账 #{submitted['id']}" in page
    rebate_only = finance_client.get(f"/console/finance/accounts/{world.dealer_a.id}?account=rebate",
                                     headers=HTML).get_data(as_text=True)
    assert "资金流水（1）" in rebate_only
    assert finance_client.get(f"/console/finance/accounts/{world.dealer_a.id}?account=cash",
                              headers=HTML).status_code == 400
    dealer_page = finance_client.get(f"/console/dealers/{world.dealer_a.code}", headers=HTML).get_data(as_text=True)
    assert f"/console/finance/accounts/{world.dealer_a.id}" in dealer_page


def test_a_manual_adjustment_moves_the_balance_with_a_reason_and_an_audit_entry(world, staff, finance_client):
    path = f"/console/finance/accounts/{world.dealer_a.id}/adjust"
    r = finance_client.post(path, data={"csrf_token": token(finance_client), "account": "prepaid", "amount": "1,000.50",
                                        "reason": "期初余额导入"}, headers=HTML)
    assert r.status_code == 302
    r = finance_client.post(path, data={"csrf_token": token(finance_client), "account": "prepaid", "amount": "-200",
                                        "reason": "多记冲回"}, headers=HTML)
    assert r.status_code == 302
    assert balances(world.dealer_a)["prepaid_fen"] == 80_050
    entries = db.session.execute(
        select(LedgerEntry).where(LedgerEntry.ref_type == "adjustment").order_by(LedgerEntry.id)).scalars().all()
    assert [(e.amount_fen, e.balance_after_fen, e.note) for e in entries] == [
        (100_050, 100_050, "手工调整：期初余额导入"), (-20_000, 80_050, "手工调整：多记冲回")]
    audits = db.session.execute(
        select(AuditEntry).where(AuditEntry.action == "ledger.adjust").order_by(AuditEntry.id)).scalars().all()
    assert [a.id for a in audits] == [e.ref_id for e in entries]
    assert audits[1].reason == "多记冲回" and audits[1].after["balance_after_fen"] == 80_050
    assert audits[1].staff_id == staff["finance"].id


@pytest.mark.parametrize("form, status, words", [
    ({"account": "prepaid", "amount": "-0.01", "reason": "冲回"}, 409, "预付款余额不足"),
    ({"account": "rebate", "amount": "-5", "reason": "冲回"}, 409, "返利余额不足"),
    ({"account": "prepaid", "amount": "0", "reason": "冲回"}, 422, "不能为 0"),
    ({"account": "prepaid", "amount": "1.001", "reason": "冲回"}, 422, "调整金额"),
    ({"account": "prepaid", "amount": "abc", "reason": "冲回"}, 422, "调整金额"),
    ({"account": "prepaid", "amount": "5", "reason": " "}, 422, "调整原因"),
    ({"account": "cash", "amount": "5", "reason": "冲回"}, 422, "选择要调整的账户"),
])
def test_a_refused_adjustment_answers_with_the_page_and_the_reason(world, finance_client, form, status, words):
    before = counts()
    r = finance_client.post(f"/console/finance/accounts/{world.dealer_a.id}/adjust",
                            data={"csrf_token": token(finance_client), **form}, headers=HTML)
    assert r.status_code == status
    page = r.get_data(as_text=True)
    assert words in page and "资金流水" in page
    assert counts() == before


def test_receivable_may_be_adjusted_below_zero(world, staff):
    entry = accounts.adjust_balance(
        staff=staff["finance"], dealer_id=world.dealer_a.id, account="receivable", amount_fen=-500, reason="多收退回")
    assert entry["balance_after_fen"] == -500
    db.session.expire_all()
    assert db.session.get(CreditAccount, world.dealer_a.id).receivable_fen == -500


# --- exactly once under concurrency -------------------------------------------------------------

@pytest.mark.postgres
def test_two_clerks_confirming_at_once_make_one_payment(pg_app, pg_world, pg_client):
    from app.staff.service import create_staff
    from tests.test_concurrency import run_concurrently

    world, client = pg_world, pg_client
    clerks = [create_staff(username=f"fin{i}", name=f"财务{i}", role="finance", password="x-password-1") for i in range(2)]
    order_no = place_order(client, world, qty=3)  # ¥120.00
    submissions = [pay(client, world.a_buyer, upload(client, world.a_buyer, (i, 0, 0)), 10_000 + i,
                       order_no=order_no if i % 2 else None).json for i in range(6)]
    clerk_ids = [c.id for c in clerks]

    def confirm(payment_id, clerk_id):
        def job(_client):
            with pg_app.app_context():
                from app.staff.models import Staff

                try:
                    offline_service.confirm_offline_payment(staff=db.session.get(Staff, clerk_id), payment_id=payment_id)
                    return "confirmed"
                except Exception as exc:  # noqa: BLE001 - the test counts the outcomes
                    return getattr(exc, "code", repr(exc))
                finally:
                    db.session.remove()
        return job

    jobs = [confirm(s["id"], clerk_id) for s in submissions for clerk_id in clerk_ids]
    results = run_concurrently(pg_app, jobs)
    assert sorted(results) == sorted(["confirmed"] * 6 + ["offline_payment_decided"] * 6), results
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar_one() == 6
    total = sum(s["amount_fen"] for s in submissions)
    paid = order_row(order_no).paid_fen
    assert paid == 12_000
    assert balances(world.dealer_a) == {"receivable_fen": 0, "prepaid_fen": total - paid, "rebate_fen": 0}
    # balance_after continuity: each account's entries replay its balance.
    for account in ("receivable", "prepaid"):
        running = 0
        for amount, after in db.session.execute(
            select(LedgerEntry.amount_fen, LedgerEntry.balance_after_fen)
            .where(LedgerEntry.dealer_id == world.dealer_a.id, LedgerEntry.account == account).order_by(LedgerEntry.id)
        ).all():
            running += amount
            assert after == running
    assert db.session.execute(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "payment.offline_confirm")
    ).scalar_one() == 6


@pytest.mark.postgres
def test_a_confirmation_and_a_rejection_at_once_decide_once(pg_app, pg_world, pg_client):
    from app.staff.service import create_staff
    from tests.test_concurrency import run_concurrently

    world, client = pg_world, pg_client
    clerk = create_staff(username="fin9", name="财务9", role="finance", password="x-password-1")
    submissions = [pay(client, world.a_buyer, upload(client, world.a_buyer, (0, i, 0)), 1_000 + i).json
                   for i in range(5)]

    def decide(payment_id, action):
        def job(_client):
            with pg_app.app_context():
                from app.staff.models import Staff

                staff = db.session.get(Staff, clerk.id)
                try:
                    if action == "confirm":
                        offline_service.confirm_offline_payment(staff=staff, payment_id=payment_id)
                    else:
                        offline_service.reject_offline_payment(staff=staff, payment_id=payment_id, reason="未到账")
                    return action
                except Exception as exc:  # noqa: BLE001 - the test counts the outcomes
                    return getattr(exc, "code", repr(exc))
                finally:
                    db.session.remove()
        return job

    results = run_concurrently(pg_app, [decide(s["id"], a) for s in submissions for a in ("confirm", "reject")])
    for i, s in enumerate(submissions):
        pair = results[2 * i: 2 * i + 2]
        assert sorted(pair) in (["confirm", "offline_payment_decided"], ["offline_payment_decided", "reject"]), pair
        row = record(s["id"])
        paid = db.session.execute(select(func.count()).select_from(Payment)
                                  .where(Payment.offline_payment_id == s["id"])).scalar_one()
        assert (row.status, paid) in (("confirmed", 1), ("rejected", 0))
    confirmed = sum(s["amount_fen"] for s in submissions if record(s["id"]).status == "confirmed")
    assert balances(world.dealer_a)["prepaid_fen"] == confirmed
