"""Paying an order by WeChat Pay (JSAPI) against the stand-in over real HTTP, and recording
each payment exactly once from WeChat Pay's signed, encrypted notifications."""
import base64
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select, update
from werkzeug.serving import make_server

from app.extensions import db
from app.funds import payments
from app.funds.models import LedgerEntry, Payment, WechatPayOrder
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.orders.models import Order
from tests.factories import auth
from tests.helpers import MP, credit, submit
from tests.test_concurrency import make_dealers, run_concurrently

NOTIFY = "/pay/wechat/notify"


def deliver(headers, body):
    """A job for `run_concurrently`: WeChat Pay posting one notification."""
    return lambda c: c.post(NOTIFY, data=body, headers=headers).status_code


def place_wechat_order(client, user, world, qty=2):
    r = submit(client, auth(user), [{"sku_id": world.cola.id, "qty": qty}], payment_method="wechat")
    assert r.status_code == 201, r.json
    return r.json


def start_paying(client, user, order_no):
    r = client.post(f"{MP}/orders/{order_no}/pay", headers=auth(user))
    assert r.status_code == 200, r.json
    return r.json


def pay_and_notify(client, wechat, out_trade_no, **tamper):
    """The payer pays in WeChat; WeChat Pay's notification reaches our notify URL."""
    wechat.pay.mark_paid(out_trade_no)
    headers, body = wechat.pay.notification(out_trade_no, **tamper)
    return client.post(NOTIFY, data=body, headers=headers)


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def ledger_rows(dealer_id):
    db.session.expire_all()
    return db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.balance_after_fen, LedgerEntry.ref_type)
        .where(LedgerEntry.dealer_id == dealer_id).order_by(LedgerEntry.id)
    ).all()


def payment_count():
    db.session.expire_all()
    return db.session.query(Payment).count()


def test_a_wechat_order_holds_no_credit_and_is_payable_at_once(client, world, wechat):
    before = credit(world.dealer_a)
    order = place_wechat_order(client, world.a_buyer, world)
    assert order["payment_method"] == "wechat" and order["totals"]["paid_fen"] == 0
    assert credit(world.dealer_a) == before

    answer = start_paying(client, world.a_buyer, order["order_no"])
    params = answer["params"]
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == "wx-test-appid" and params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=wx") and params["timeStamp"].isdigit()
    # paySign is RSA-SHA256 over appId, timeStamp, nonceStr, package: what wx.requestPayment checks.
    keys = wechat.test_pay_config["_keys"]
    public = serialization.load_pem_public_key(Path(keys["merchant_public_key"]).read_bytes())
    message = "\n".join([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]) + "\n"
    public.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())

    at_wechat = wechat.pay.get(answer["out_trade_no"])
    assert at_wechat["total"] == order["totals"]["total_fen"] == answer["amount_fen"]
    assert at_wechat["openid"] == world.a_buyer.openid and at_wechat["trade_state"] == "NOTPAY"
    assert at_wechat["prepay_id"] == params["package"][len("prepay_id="):]


def test_paying_twice_reuses_the_open_prepay_order(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    first = start_paying(client, world.a_buyer, order["order_no"])
    second = start_paying(client, world.a_buyer, order["order_no"])
    assert first["out_trade_no"] == second["out_trade_no"]
    assert first["params"]["package"] == second["params"]["package"]
    assert len(wechat.pay.orders()) == 1


def test_the_notification_records_the_payment_and_its_ledger_entries(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    r = pay_and_notify(client, wechat, no)
    assert r.status_code == 204 and r.data == b""

    total = order["totals"]["total_fen"]
    assert order_row(order["order_no"]).paid_fen == total
    [payment] = db.session.execute(select(Payment)).scalars().all()
    assert (payment.amount_fen, payment.applied_fen, payment.out_trade_no) == (total, total, no)
    assert payment.transaction_id == wechat.pay.get(no)["transaction_id"]
    assert ledger_rows(world.dealer_a.id) == [("receivable", total, total, "order"), ("receivable", -total, 0, "payment")]
    shown = client.get(f"{MP}/orders/{order['order_no']}", headers=auth(world.a_buyer)).json
    assert shown["totals"]["paid_fen"] == total
    r = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 409 and r.json["error"]["code"] == "order_already_paid"


def test_a_duplicate_notification_records_nothing_more(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    assert pay_and_notify(client, wechat, no).status_code == 204
    entries = ledger_rows(world.dealer_a.id)
    for _ in range(3):  # WeChat Pay retries, each time with a new notification id and signature
        headers, body = wechat.pay.notification(no)
        assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert payment_count() == 1
    assert ledger_rows(world.dealer_a.id) == entries
    assert order_row(order["order_no"]).paid_fen == order["totals"]["total_fen"]


@pytest.mark.parametrize("forgery", ["other_key", "tampered_body", "stale", "missing_headers", "wrong_apiv3_key"])
def test_forged_notifications_are_refused_and_record_nothing(client, world, wechat, forgery):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    wechat.pay.mark_paid(no)
    if forgery == "other_key":
        headers, body = wechat.pay.notification(no, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif forgery == "stale":
        headers, body = wechat.pay.notification(no, timestamp_offset=-600)
    elif forgery == "wrong_apiv3_key":
        headers, body = wechat.pay.notification(no, apiv3_key="another-apiv3-key-32-bytes-long!")
    else:
        headers, body = wechat.pay.notification(no)
        if forgery == "tampered_body":
            body = body.replace(b'"summary": "', b'"summary": "x')
        else:
            headers = {"Content-Type": "application/json"}
    r = client.post(NOTIFY, data=body, headers=headers)
    assert r.status_code == 401 and r.json["code"] == "SIGN_ERROR" and r.json["message"]
    assert payment_count() == 0 and ledger_rows(world.dealer_a.id) == []
    assert order_row(order["order_no"]).paid_fen == 0


def test_a_notification_with_a_wrong_amount_is_refused(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    r = pay_and_notify(client, wechat, no, total=1)
    assert r.status_code == 400 and r.json == {"code": "AMOUNT_MISMATCH", "message": "支付金额与订单金额不符"}
    assert payment_count() == 0 and ledger_rows(world.dealer_a.id) == []
    assert order_row(order["order_no"]).paid_fen == 0


def test_a_notification_for_an_unknown_trade_or_another_merchant_is_refused(app, client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    wechat.pay.mark_paid(no)
    wechat.pay.put("SO209901010001P01", **{**wechat.pay.get(no), "out_trade_no": "SO209901010001P01"})
    headers, body = wechat.pay.notification("SO209901010001P01")
    r = client.post(NOTIFY, data=body, headers=headers)
    assert r.status_code == 404 and r.json["code"] == "ORDER_NOT_EXIST"
    app.config["WECHATPAY_MCHID"] = "1900000999"  # our merchant is another one now
    headers, body = wechat.pay.notification(no)
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 400
    assert payment_count() == 0


def test_money_for_a_cancelled_order_goes_to_prepaid(client, world, wechat):
    """Out of order: the dealer cancels while the payment is on its way."""
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    r = client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=auth(world.a_buyer), json={})
    assert r.status_code == 200
    assert pay_and_notify(client, wechat, no).status_code == 204
    total = order["totals"]["total_fen"]
    assert ledger_rows(world.dealer_a.id) == [("prepaid", total, total, "payment")]
    assert order_row(order["order_no"]).paid_fen == 0
    account = client.get(f"{MP}/account", headers=auth(world.a_buyer)).json
    assert account["accounts"] == {"receivable_fen": 0, "prepaid_fen": total, "rebate_fen": 0}


def test_a_late_notification_of_a_superseded_prepay_order_is_kept_as_prepaid(client, world, wechat):
    """Out of order: the first prepay order expired and was replaced; the payer had paid
    it just before, and its notification arrives after the second one's."""
    order = place_wechat_order(client, world.a_buyer, world)
    first = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    wechat.pay.mark_paid(first)
    db.session.execute(update(WechatPayOrder).values(expires_at=utcnow() + timedelta(seconds=30)))
    db.session.commit()
    second = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    assert second != first and second.endswith("P02")
    assert pay_and_notify(client, wechat, second).status_code == 204
    headers, body = wechat.pay.notification(first)
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 204

    total = order["totals"]["total_fen"]
    assert order_row(order["order_no"]).paid_fen == total
    assert payment_count() == 2
    assert ledger_rows(world.dealer_a.id) == [
        ("receivable", total, total, "order"), ("receivable", -total, 0, "payment"), ("prepaid", total, total, "payment"),
    ]


def test_cancelling_a_paid_order_moves_the_money_to_prepaid(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    assert pay_and_notify(client, wechat, no).status_code == 204
    assert client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=auth(world.a_buyer), json={}).status_code == 200
    total = order["totals"]["total_fen"]
    assert ledger_rows(world.dealer_a.id)[-1] == ("prepaid", total, total, "order")


def test_only_own_wechat_orders_that_are_unpaid_can_be_paid(client, world, wechat):
    mine = place_wechat_order(client, world.a_buyer, world)
    r = client.post(f"{MP}/orders/{mine['order_no']}/pay", headers=auth(world.b_owner))
    assert r.status_code == 404
    on_credit = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).json
    r = client.post(f"{MP}/orders/{on_credit['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 409 and r.json["error"]["code"] == "not_wechat_order"
    r = client.post(f"{MP}/orders/{mine['order_no']}/pay", headers=auth(world.a_viewer))
    assert r.status_code == 403
    assert wechat.pay.orders() == []
    client.post(f"{MP}/orders/{mine['order_no']}/cancel", headers=auth(world.a_buyer), json={})
    r = client.post(f"{MP}/orders/{mine['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 409 and r.json["error"]["code"] == "order_not_payable"


def test_without_wechatpay_settings_paying_answers_503(app, client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    app.config["WECHATPAY_MCHID"] = None
    r = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 503 and r.json["error"]["code"] == "wechatpay_not_configured"


def test_wechatpay_down_answers_503_and_the_next_tap_retries(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    wechat.fail_next("/v3/pay/transactions/jsapi", http_status=502)
    r = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 503 and r.json["error"]["code"] == "wechatpay_unavailable"
    assert start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"].endswith("P01")


def test_an_unpaid_prepay_order_can_be_queried_and_closed(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    assert payments.query_wechat_payment(out_trade_no=no) == ("NOTPAY", "unpaid")
    payments.close_wechat_payment(out_trade_no=no)
    assert wechat.pay.get(no)["trade_state"] == "CLOSED"
    db.session.expire_all()
    assert db.session.execute(select(WechatPayOrder.status)).scalar_one() == "closed"
    # The next tap makes a new prepay order.
    assert start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"].endswith("P02")


def test_querying_records_a_payment_whose_notification_was_lost(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    wechat.pay.mark_paid(no)
    assert payments.query_wechat_payment(out_trade_no=no) == ("SUCCESS", "recorded")
    assert payments.query_wechat_payment(out_trade_no=no) == ("SUCCESS", "duplicate")
    assert payment_count() == 1
    with pytest.raises(DomainError) as refused:
        payments.close_wechat_payment(out_trade_no=no)
    assert refused.value.code == "order_already_paid"


def test_pay_cli_queries_and_closes(app, client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["pay", "open"])
    assert no in result.output
    result = runner.invoke(args=["pay", "query", no])
    assert result.exit_code == 0 and "NOTPAY" in result.output
    result = runner.invoke(args=["pay", "close", no])
    assert result.exit_code == 0 and wechat.pay.get(no)["trade_state"] == "CLOSED"
    result = runner.invoke(args=["pay", "query", "SO000000000000P09"])
    assert result.exit_code != 0


def test_requests_the_merchant_did_not_sign_are_refused_by_the_stand_in(wechat):
    r = requests.post(f"{wechat.base_url}/v3/pay/transactions/jsapi", json={"mchid": "1900000109"}, timeout=5,
                      headers={"Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",signature="eA=="'})
    assert r.status_code == 401 and r.json()["code"] == "SIGN_ERROR"


@pytest.fixture
def served(app, wechat):
    """Our app on a real port, its notify URL where the stand-in can reach it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    app.config["WECHATPAY_NOTIFY_URL"] = f"http://127.0.0.1:{server.server_port}{NOTIFY}"
    yield wechat
    server.shutdown()
    thread.join(timeout=5)


def test_the_stand_in_notifies_over_http_when_the_payer_pays(client, world, served):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    r = requests.post(f"{served.base_url}/_standin/pay/{no}/pay", timeout=10)
    assert r.status_code == 200 and r.json()["ok"], r.json()
    assert served.pay.notifications[-1]["status"] == 204
    assert order_row(order["order_no"]).paid_fen == order["totals"]["total_fen"]


def test_account_and_ledger_show_only_the_dealers_own(client, world, wechat):
    order = place_wechat_order(client, world.a_buyer, world)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    pay_and_notify(client, wechat, no)
    total = order["totals"]["total_fen"]

    mine = client.get(f"{MP}/account", headers=auth(world.a_buyer)).json
    assert mine["accounts"] == {"receivable_fen": 0, "prepaid_fen": 0, "rebate_fen": 0}
    assert set(mine["credit"]) == {"limit_fen", "used_fen", "available_fen"}
    page = client.get(f"{MP}/account/ledger?account=receivable", headers=auth(world.a_viewer)).json
    assert page["total"] == 2
    assert [(i["amount_fen"], i["order_no"], i["account_label"]) for i in page["items"]] == [
        (-total, order["order_no"], "应收账款"), (total, order["order_no"], "应收账款")]
    assert client.get(f"{MP}/account/ledger?account=prepaid", headers=auth(world.a_buyer)).json["total"] == 0

    theirs = client.get(f"{MP}/account/ledger", headers=auth(world.b_owner)).json
    assert theirs["total"] == 0 and theirs["items"] == []
    assert client.get(f"{MP}/account/ledger?account=cash", headers=auth(world.a_buyer)).status_code == 422
    assert client.get(f"{MP}/account").status_code == 401


@pytest.mark.postgres
def test_concurrent_duplicate_notifications_record_one_payment(pg_app, pg_world, wechat):
    [user] = make_dealers(pg_world, 1)
    client = pg_app.test_client()
    order = place_wechat_order(client, user, pg_world, qty=1)
    no = start_paying(client, user, order["order_no"])["out_trade_no"]
    wechat.pay.mark_paid(no)
    notifications = [wechat.pay.notification(no) for _ in range(12)]

    results = run_concurrently(pg_app, [deliver(h, b) for h, b in notifications])
    assert results == [204] * 12
    assert payment_count() == 1
    total = order["totals"]["total_fen"]
    assert ledger_rows(user.dealer_id) == [("receivable", total, total, "order"), ("receivable", -total, 0, "payment")]
    assert order_row(order["order_no"]).paid_fen == total


@pytest.mark.postgres
def test_concurrent_wechat_orders_and_payments_keep_the_ledger_continuous(pg_app, pg_world, wechat):
    """Orders on credit, WeChat orders and their notifications for one dealer, all at once."""
    [user] = make_dealers(pg_world, 1)
    client = pg_app.test_client()
    paid = []
    for _ in range(6):
        order = place_wechat_order(client, user, pg_world, qty=1)
        no = start_paying(client, user, order["order_no"])["out_trade_no"]
        wechat.pay.mark_paid(no)
        paid.append(wechat.pay.notification(no))
    jobs = [deliver(h, b) for h, b in paid * 2]
    headers, cola = auth(user), pg_world.cola.id
    jobs += [lambda c: submit(c, headers, [{"sku_id": cola, "qty": 1}]).status_code] * 6
    results = run_concurrently(pg_app, jobs)
    assert results == [204] * 12 + [201] * 6
    assert payment_count() == 6
    rows = ledger_rows(user.dealer_id)
    balance = 0
    for account, amount, after, _ in rows:
        assert account == "receivable"
        balance += amount
        assert after == balance
    assert balance == 0 and len(rows) == 12


def test_a_wechat_order_beyond_the_credit_limit_is_accepted(client, world, wechat):
    """No credit is held for it, so the credit limit does not apply (preview agrees)."""
    from app.funds.models import CreditAccount

    db.session.get(CreditAccount, world.dealer_a.id).credit_limit_fen = 1
    db.session.commit()
    lines = [{"sku_id": world.cola.id, "qty": 2}]
    on_credit = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer), json={"lines": lines}).json
    assert "credit_limit_exceeded" in [p["code"] for p in on_credit["problems"]]
    by_wechat = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer),
                            json={"lines": lines, "payment_method": "wechat"}).json
    assert by_wechat["ok"] is True
    assert submit(client, auth(world.a_buyer), lines).status_code == 409
    order = place_wechat_order(client, world.a_buyer, world)
    assert order_row(order["order_no"]).credit_held_fen == 0


def test_the_demo_pays_through_its_own_stand_in_with_generated_keys(app, tmp_path, monkeypatch):
    from app import config
    from app.integrations.wechatpay import WeChatPayGateway
    from devtools import cli
    from devtools.standin import StandinServer

    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    server = StandinServer.start()
    try:
        settings = cli._demo_wechatpay(server, 5000, {"WECHAT_APP_ID": "wx-demo-appid"})
        assert (tmp_path / "wechatpay-demo" / "wechatpay_merchant_private_key.pem").exists()
        again = cli._demo_wechatpay(server, 5000, {"WECHAT_APP_ID": "wx-demo-appid"})  # keys kept
        assert again == settings
        gateway = WeChatPayGateway.from_config({**settings, "WECHAT_HTTP_TIMEOUT": 2})
        prepay_id = gateway.create_jsapi(out_trade_no="SO202611260001P01", description="演示", amount_fen=100,
                                         openid="o-demo")
        assert server.pay.get("SO202611260001P01")["prepay_id"] == prepay_id
        assert gateway.query("SO202611260001P01")["trade_state"] == "NOTPAY"
    finally:
        server.stop()


def test_an_answer_not_signed_by_the_platform_key_is_refused(app, wechat):
    """The gateway checks WeChat Pay's signature on every answer (here: another public key)."""
    from app.integrations.wechatpay import (
        WeChatPayError,
        WeChatPayGateway,
        generate_keys,
    )

    other = generate_keys(Path(wechat.test_pay_config["_keys"]["merchant_private_key"]).parent / "other")
    config = {**app.config, "WECHATPAY_PUBLIC_KEY": other["platform_public_key"]}
    gateway = WeChatPayGateway.from_config(config)
    with pytest.raises(WeChatPayError) as refused:
        gateway.create_jsapi(out_trade_no="SO202611260009P01", description="测试", amount_fen=100, openid="o-x")
    assert refused.value.unavailable and "signature" in refused.value.message


def test_a_notification_arriving_before_the_prepay_answer_is_recorded(app, client, world, wechat, monkeypatch):
    """Out of order: the payer is that fast, or our process that slow — WeChat Pay's
    notification comes in while our /pay request still waits for the prepay answer."""
    from app.integrations.wechatpay import WeChatPayGateway

    real = WeChatPayGateway.create_jsapi
    answers = []

    def create_then_notified(self, **kwargs):
        prepay_id = real(self, **kwargs)
        answers.append(pay_and_notify(app.test_client(), wechat, kwargs["out_trade_no"]).status_code)
        return prepay_id

    monkeypatch.setattr(WeChatPayGateway, "create_jsapi", create_then_notified)
    order = place_wechat_order(client, world.a_buyer, world)
    start_paying(client, world.a_buyer, order["order_no"])
    assert answers == [204]
    assert order_row(order["order_no"]).paid_fen == order["totals"]["total_fen"]
    db.session.expire_all()
    attempt = db.session.execute(select(WechatPayOrder)).scalar_one()
    assert attempt.status == "paid" and attempt.prepay_id  # the late prepay answer did not reopen it


def test_the_reconcile_job_records_lost_payments_and_closes_expired_ones(client, world, wechat):
    orders = [place_wechat_order(client, world.a_buyer, world, qty=1) for _ in range(3)]
    nos = [start_paying(client, world.a_buyer, o["order_no"])["out_trade_no"] for o in orders]
    wechat.pay.mark_paid(nos[0])  # paid, its notification lost
    db.session.execute(update(WechatPayOrder).values(created_at=utcnow() - timedelta(minutes=40)))
    db.session.execute(update(WechatPayOrder).where(WechatPayOrder.out_trade_no == nos[2])
                       .values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert payments.reconcile_wechat_payments() == {nos[0]: "recorded", nos[1]: "unpaid", nos[2]: "closed"}
    assert order_row(orders[0]["order_no"]).paid_fen == orders[0]["totals"]["total_fen"]
    assert wechat.pay.get(nos[2])["trade_state"] == "CLOSED"
    assert payments.reconcile_wechat_payments() == {nos[1]: "unpaid"}
