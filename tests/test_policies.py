"""Policies: audience rules through the mini-program endpoints, versions and re-acknowledgement,
read marking, isolation, delivery and reminders (outbox rows), the scheduler, sanitising,
and the console (roles, CSRF, figures that match the database)."""
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.audience import service as audiences
from app.audit.models import AuditEntry
from app.dealers.models import Dealer, DealerUser
from app.extensions import db
from app.kernel.clock import utcnow
from app.notify import dealer_alerts
from app.notify.models import DealerMessage, Outbox
from app.policies import authoring, reading, reminders
from app.policies.models import (
    Policy,
    PolicyAck,
    PolicyDelivery,
    PolicyRead,
    PolicyVersion,
)
from tests.factories import add, auth, make_user
from tests.helpers import HTML, MP, console_login, csrf

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def w(world, staff):
    """DA01 gold Guangzhou, DB01 silver Shanghai, DC01 silver Shenzhen (each with an owner)."""
    world.dealer_c = add(Dealer(code="DC01", name="深圳鹏城贸易", tier_id=world.silver.id, region_code="440300",
                                rep_id=world.rep.id))
    world.c_owner = make_user(world.dealer_c, "owner")
    world.staff = staff
    db.session.commit()
    return world


def fields(title="2026 年冬季返利政策", body="<p>订货满 10 万返 2%。</p>", **extra):
    return authoring.parse_fields({"title": title, "category": extra.pop("category", "channel"), "body": body, **extra})


def publish(w, audience, *, ack=False, title="2026 年冬季返利政策", body="<p>订货满 10 万返 2%。</p>", files=()):
    policy = authoring.create_policy(staff=w.staff["marketing"], fields=fields(title, body, ack_required=ack),
                                     audience=audiences.parse(audience), files=files)
    return authoring.publish_policy(staff=w.staff["marketing"], policy_id=policy.id)


def listed(client, user, **query):
    r = client.get(f"{MP}/policies", headers=auth(user), query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def titles(client, user):
    return {item["title"] for item in listed(client, user)["items"]}


# --- audience rules, seen through the endpoints -------------------------------------------

def test_each_dealer_sees_exactly_the_policies_addressed_to_it(client, w):
    publish(w, {"all": True}, title="全部")
    publish(w, {"tiers": ["gold"]}, title="金牌")
    publish(w, {"regions": ["440000"]}, title="广东")
    publish(w, {"dealers": ["DB01"]}, title="指定沪联")
    publish(w, {"tiers": ["silver"], "regions": ["440000"]}, title="广东银牌")

    assert titles(client, w.a_owner) == {"全部", "金牌", "广东"}
    assert titles(client, w.b_owner) == {"全部", "指定沪联"}
    assert titles(client, w.c_owner) == {"全部", "广东", "广东银牌"}


def test_publishing_delivers_only_inside_the_audience(client, w):
    policy = publish(w, {"tiers": ["gold"]})
    delivered = set(db.session.execute(select(PolicyDelivery.dealer_id).where(PolicyDelivery.policy_id == policy.id)).scalars())
    messaged = set(db.session.execute(
        select(DealerMessage.dealer_id).where(DealerMessage.ref_type == "policy", DealerMessage.ref_id == policy.id)
    ).scalars())
    assert delivered == messaged == {w.dealer_a.id}


def test_a_dealer_moved_between_tiers_after_publishing_sees_what_its_new_tier_is_addressed(client, w):
    policy = publish(w, {"tiers": ["gold"]}, ack=True)
    assert client.get(f"{MP}/policies/{policy.id}", headers=auth(w.b_owner)).status_code == 404

    w.dealer_b.tier_id = w.gold.id      # B joins the audience
    w.dealer_a.tier_id = w.silver.id    # A leaves it
    db.session.commit()

    assert titles(client, w.b_owner) == {policy.title}
    assert titles(client, w.a_owner) == set()
    assert client.get(f"{MP}/policies/{policy.id}", headers=auth(w.a_owner)).status_code == 404
    assert client.post(f"{MP}/policies/{policy.id}/ack", headers=auth(w.a_owner)).status_code == 404
    assert client.get(f"{MP}/policies/{policy.id}", headers=auth(w.b_owner)).status_code == 200

    stats = reading.policy_stats(policy.id)
    # B is addressed now (and read it) but was never pushed; A was pushed, no longer addressed.
    assert stats["figures"] == {"addressed": 1, "delivered": 0, "read": 1, "acked": 0, "left": 1}

    # A reminder now reaches B (in the audience) and never A.
    reminded, _ = reminders.remind_stragglers(staff=w.staff["marketing"], policy_id=policy.id)
    assert reminded == 1
    messaged = db.session.execute(
        select(DealerMessage.dealer_id).where(DealerMessage.event == "policy_reminder")
    ).scalars().all()
    assert messaged == [w.dealer_b.id]


# --- versions, reading, acknowledging ---------------------------------------------------------

def test_editing_a_published_policy_publishes_a_new_version_that_must_be_acknowledged_again(client, w):
    policy = publish(w, {"all": True}, ack=True, body="<p>订货满 10 万返 2%。</p><p>年底结算。</p>")
    url = f"{MP}/policies/{policy.id}"
    first = client.post(f"{url}/ack", headers=auth(w.a_owner))
    assert first.status_code == 200 and first.get_json()["version"] == 1
    again = client.post(f"{url}/ack", headers=auth(w.a_buyer))  # idempotent: the first one stands
    assert again.get_json() == first.get_json()
    assert db.session.execute(select(func.count()).select_from(PolicyAck)).scalar_one() == 1

    _, version = authoring.update_policy(
        staff=w.staff["marketing"], policy_id=policy.id,
        fields=fields(body="<p>订货满 10 万返 3%。</p><p>年底结算。</p>", ack_required="1", effective_to="2026-12-31"),
        audience=audiences.parse({"all": True}),
    )
    assert version == 2
    item = listed(client, w.a_owner)["items"][0]
    assert (item["read"], item["ack_required"], item["acked"]) == (False, True, False)

    detail = client.get(url, headers=auth(w.a_owner)).get_json()
    assert detail["version"] == 2
    assert any("返 2%" in c and "返 3%" in c for c in detail["changes"]), detail["changes"]
    assert any(c.startswith("有效期") for c in detail["changes"])
    assert detail["acked"] is False

    second = client.post(f"{url}/ack", headers=auth(w.a_owner)).get_json()
    assert second["version"] == 2
    assert sorted(db.session.execute(select(PolicyAck.version)).scalars()) == [1, 2]
    # The new version was pushed again and announced to the internal group.
    assert db.session.execute(select(PolicyDelivery.version).where(
        PolicyDelivery.dealer_id == w.dealer_a.id)).scalar_one() == 2
    robot = db.session.execute(select(Outbox).where(Outbox.channel == "wecom_robot")).scalars().all()
    assert [r.dedupe_key for r in robot] == [f"policy:{policy.id}:v1:wecom_robot:default",
                                             f"policy:{policy.id}:v2:wecom_robot:default"]
    assert [(r.recipient, r.ref_type, r.ref_id) for r in robot] == [("default", "policy", policy.id)] * 2
    assert "本次更新" in robot[1].payload["markdown"]["content"]
    assert "本次更新" in robot[1].payload["markdown"]["content"]


def test_widening_the_audience_delivers_the_current_version_to_newcomers_without_a_new_version(client, w):
    policy = publish(w, {"tiers": ["gold"]}, files=[("细则.pdf", PDF)])
    _, version = authoring.update_policy(staff=w.staff["marketing"], policy_id=policy.id, fields=fields(),
                                         audience=audiences.parse({"tiers": ["gold", "silver"]}))
    assert version is None
    delivered = dict(db.session.execute(select(PolicyDelivery.dealer_id, PolicyDelivery.version)).all())
    assert delivered == {w.dealer_a.id: 1, w.dealer_b.id: 1, w.dealer_c.id: 1}
    messages = db.session.execute(select(DealerMessage.dealer_id).where(DealerMessage.ref_type == "policy")).scalars().all()
    assert sorted(messages) == sorted([w.dealer_a.id, w.dealer_b.id, w.dealer_c.id])  # A is not told twice

    attachment = reading.current_attachments(db.session.get(Policy, policy.id))[0]
    _, version = authoring.update_policy(staff=w.staff["marketing"], policy_id=policy.id, fields=fields(),
                                         audience=audiences.parse({"tiers": ["gold", "silver"]}),
                                         remove_attachment_ids=[attachment.id])
    assert version == 2
    detail = client.get(f"{MP}/policies/{policy.id}", headers=auth(w.b_owner)).get_json()
    assert detail["attachments"] == [] and detail["changes"] == ["附件：移除 细则.pdf"]


def test_saving_without_a_change_makes_no_version(client, w):
    policy = publish(w, {"all": True})
    _, version = authoring.update_policy(staff=w.staff["marketing"], policy_id=policy.id, fields=fields(),
                                         audience=audiences.parse({"all": True}))
    assert version is None
    assert db.session.execute(select(func.count()).select_from(PolicyVersion)).scalar_one() == 1


def test_ack_on_a_policy_without_acknowledgement_is_409_and_a_viewer_may_not_acknowledge(client, w):
    plain = publish(w, {"all": True})
    r = client.post(f"{MP}/policies/{plain.id}/ack", headers=auth(w.a_owner))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "ack_not_required"
    needed = publish(w, {"all": True}, ack=True, title="需确认")
    r = client.post(f"{MP}/policies/{needed.id}/ack", headers=auth(w.a_viewer))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_role"
    assert db.session.execute(select(func.count()).select_from(PolicyAck)).scalar_one() == 0


def test_opening_a_policy_marks_it_read_for_that_user_only_and_unread_comes_first(client, w):
    old = publish(w, {"all": True}, title="旧政策")
    new = publish(w, {"all": True}, title="新政策")
    assert [i["title"] for i in listed(client, w.a_owner)["items"]] == ["新政策", "旧政策"]
    assert client.get(f"{MP}/me", headers=auth(w.a_owner)).get_json()["unread_policies"] == 2

    assert client.get(f"{MP}/policies/{new.id}", headers=auth(w.a_owner)).status_code == 200
    mine = listed(client, w.a_owner)
    assert [(i["title"], i["read"]) for i in mine["items"]] == [("旧政策", False), ("新政策", True)]
    assert mine["unread"] == 1
    assert client.get(f"{MP}/me", headers=auth(w.a_owner)).get_json()["unread_policies"] == 1
    assert listed(client, w.a_buyer)["unread"] == 2  # a colleague has their own badge
    row = db.session.execute(select(PolicyRead)).scalar_one()
    assert (row.policy_id, row.user_id, row.dealer_id, row.version) == (new.id, w.a_owner.id, w.dealer_a.id, 1)
    assert old.id != new.id


def test_list_filters_by_category_and_pages(client, w):
    publish(w, {"all": True}, title="渠道")
    authoring.publish_policy(staff=w.staff["admin"], policy_id=authoring.create_policy(
        staff=w.staff["admin"], fields=fields("价格", category="price"), audience=audiences.parse({"all": True})).id)
    body = listed(client, w.a_owner, category="price")
    assert [i["title"] for i in body["items"]] == ["价格"] and body["total"] == 1 and body["unread"] == 2
    assert listed(client, w.a_owner, page_size=1, page=2)["items"][0]["title"] == "渠道"
    bad = client.get(f"{MP}/policies", headers=auth(w.a_owner), query_string={"category": "nope"})
    assert bad.status_code == 422


# --- isolation ------------------------------------------------------------------------------

def test_unaddressed_draft_withdrawn_and_missing_policies_answer_the_same_404(client, w):
    foreign = publish(w, {"dealers": ["DB01"]}, ack=True, title="只给沪联")
    draft = authoring.create_policy(staff=w.staff["marketing"], fields=fields(ack_required="1"),
                                    audience=audiences.parse({"all": True}))
    withdrawn = publish(w, {"all": True}, ack=True, title="已撤回")
    authoring.withdraw_policy(staff=w.staff["marketing"], policy_id=withdrawn.id, reason="内容有误")
    answers = []
    for policy_id in (foreign.id, draft.id, withdrawn.id, 999_999):
        for method, path in (("GET", ""), ("POST", "/ack")):
            r = client.open(f"{MP}/policies/{policy_id}{path}", method=method, headers=auth(w.a_owner))
            assert r.status_code == 404, (policy_id, path)
            answers.append(r.get_json())
    assert all(a == answers[0] for a in answers) and answers[0]["error"]["code"] == "policy_not_found"
    assert db.session.execute(select(func.count()).select_from(PolicyRead)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(PolicyAck)).scalar_one() == 0
    assert client.get(f"{MP}/policies/{foreign.id}", headers=auth(w.b_owner)).status_code == 200


def test_an_unbound_wechat_user_gets_403_on_every_policy_route(client, w):
    from app.dealers.identity import issue_token

    policy = publish(w, {"all": True}, ack=True)
    headers = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for method, path in (("GET", ""), ("GET", f"/{policy.id}"), ("POST", f"/{policy.id}/ack")):
        r = client.open(f"{MP}/policies{path}", method=method, headers=headers)
        assert (r.status_code, r.get_json()["error"]["code"]) == (403, "not_bound"), path


# --- sanitising and attachments ----------------------------------------------------------------

EVIL = ('<p onclick="steal()">满减<script>alert(1)</script></p><img src="x.png" onerror="alert(2)">'
        '<a href="javascript:alert(3)">点我</a><a href="https://brand.example/p">详情</a><style>p{}</style>'
        '<iframe src="https://evil.example"></iframe>')


def test_the_body_is_sanitised_on_save_and_served_clean(client, w):
    policy = publish(w, {"all": True}, body=EVIL)
    stored = db.session.get(Policy, policy.id).body_html
    served = client.get(f"{MP}/policies/{policy.id}", headers=auth(w.a_owner)).get_json()["body_html"]
    for text in (stored, served):
        for bad in ("script", "onerror", "onclick", "javascript:", "alert", "iframe", "style"):
            assert bad not in text.lower(), (bad, text)
        assert "满减" in text and 'href="https://brand.example/p"' in text and '<img src="x.png">' in text


def png_bytes():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_attachments_are_checked_from_their_bytes_and_served_by_signed_url(client, w):
    policy = publish(w, {"all": True}, files=[("价目表.pdf", PDF), ("海报.png", png_bytes())])
    detail = client.get(f"{MP}/policies/{policy.id}", headers=auth(w.a_owner)).get_json()
    files = {a["filename"]: a for a in detail["attachments"]}
    assert files["价目表.pdf"]["content_type"] == "application/pdf"
    assert files["海报.png"]["content_type"] == "image/png"
    got = client.get(files["价目表.pdf"]["url"].replace("http://localhost", ""))
    assert got.status_code == 200 and got.data == PDF

    from app.kernel.errors import DomainError
    with pytest.raises(DomainError) as exc:
        publish(w, {"all": True}, files=[("报价.pdf", b"<html><script>x</script></html>")])
    assert exc.value.code == "unsupported_file_type" and CJK.search(exc.value.message)


# --- the scheduler ---------------------------------------------------------------------------------

def test_the_scheduled_job_publishes_due_policies_once(client, w):
    policy = authoring.create_policy(staff=w.staff["marketing"], fields=fields(), audience=audiences.parse({"all": True}))
    authoring.schedule_policy(staff=w.staff["marketing"], policy_id=policy.id, publish_at=utcnow() + timedelta(hours=1))
    assert authoring.publish_due_policies() == []
    assert listed(client, w.a_owner)["items"] == []

    db.session.get(Policy, policy.id).publish_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert authoring.publish_due_policies() == [policy.id]
    assert authoring.publish_due_policies() == []  # a second run finds nothing due
    assert titles(client, w.a_owner) == {policy.title}
    assert db.session.execute(select(func.count()).select_from(PolicyDelivery)).scalar_one() == 3
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "policy.publish")).scalar_one()
    assert entry.actor_name == "定时任务"


def test_a_time_in_the_past_cannot_be_scheduled(w):
    from app.kernel.errors import DomainError

    policy = authoring.create_policy(staff=w.staff["marketing"], fields=fields(), audience=audiences.parse({"all": True}))
    with pytest.raises(DomainError) as exc:
        authoring.schedule_policy(staff=w.staff["marketing"], policy_id=policy.id, publish_at=utcnow() - timedelta(minutes=1))
    assert exc.value.status == 422


# --- notifications: publishing and reminders -----------------------------------------------------

@pytest.mark.delivers
def test_publishing_sends_subscribe_messages_to_consenting_users_through_the_stand_in(client, w, wechat):
    dealer_alerts.record_consents(user=w.a_owner, template_ids=["demo-tmpl-policy-published"])
    policy = publish(w, {"tiers": ["gold"]}, ack=True)
    sent = [d for d in wechat.delivered if d["channel"] == "mp_subscribe"]
    assert [d["to"] for d in sent] == [w.a_owner.openid]
    body = sent[0]["body"]
    assert body["template_id"] == "demo-tmpl-policy-published" and body["page"] == f"pages/policy/detail?id={policy.id}"
    assert body["data"]["phrase2"]["value"] == "渠道政策"
    robot = [d for d in wechat.delivered if d["channel"] == "wecom_robot"]
    assert len(robot) == 1 and policy.title in robot[0]["body"]["markdown"]["content"]
    rows = db.session.execute(select(Outbox.channel, Outbox.status).where(Outbox.ref_type == "policy")).all()
    assert sorted(rows) == [("mp_subscribe", "sent"), ("wecom_robot", "sent")]


def test_reminders_write_outbox_rows_to_stragglers_and_their_reps_once(client, w, wechat):
    for user in (w.a_owner, w.b_owner, w.c_owner):
        dealer_alerts.record_consents(user=user, template_ids=["demo-tmpl-policy-reminder"])
    policy = publish(w, {"all": True}, ack=True)
    client.post(f"{MP}/policies/{policy.id}/ack", headers=auth(w.c_owner))   # C is done
    client.get(f"{MP}/policies/{policy.id}", headers=auth(w.b_owner))        # B read, not acknowledged

    assert reminders.remind_stragglers(staff=w.staff["marketing"], policy_id=policy.id) == (2, 0)
    rows = db.session.execute(
        select(Outbox.channel, Outbox.recipient).where(Outbox.event == "policy_reminder").order_by(Outbox.id)
    ).all()
    assert sorted(rows) == sorted([("mp_subscribe", w.a_owner.openid), ("mp_subscribe", w.b_owner.openid),
                                   ("wecom_app", "WangYeWu")])
    rep = db.session.execute(select(Outbox).where(Outbox.event == "policy_reminder", Outbox.channel == "wecom_app")).scalar_one()
    assert "广州鑫达" in rep.payload["text"]["content"] and "沪联" in rep.payload["text"]["content"]

    assert reminders.remind_stragglers(staff=w.staff["marketing"], policy_id=policy.id) == (0, 2)
    assert db.session.execute(select(func.count()).select_from(Outbox).where(Outbox.event == "policy_reminder")).scalar_one() == 3
    assert db.session.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "policy.remind")).scalar_one() == 1


# --- console ------------------------------------------------------------------------------------

def form(audience_all="1", **extra):
    data = {"title": "十二月促销", "category": "promotion", "body": "<p>买十送一</p>", "audience_all": audience_all}
    data.update(extra)
    return data


@pytest.mark.parametrize("username", ["money", "cang"])
def test_finance_and_warehouse_get_403_on_policy_pages(client, w, username):
    policy = publish(w, {"all": True})
    console_login(client, username)
    token = csrf(client, "/console/")
    for path in ("/console/policies", f"/console/policies/{policy.id}", "/console/policies/new"):
        r = client.get(path, headers=HTML)
        assert r.status_code == 403 and CJK.search(r.get_data(as_text=True)), path
    for action in ("publish", "withdraw", "remind", "schedule"):
        r = client.post(f"/console/policies/{policy.id}/{action}", data={"csrf_token": token}, headers=HTML)
        assert r.status_code == 403, action


def test_sales_may_view_but_not_change(client, w):
    policy = publish(w, {"all": True})
    console_login(client, "rep1")
    assert client.get("/console/policies", headers=HTML).status_code == 200
    assert client.get(f"/console/policies/{policy.id}", headers=HTML).status_code == 200
    token = csrf(client, "/console/policies")
    assert client.post("/console/policies/new", data={**form(), "csrf_token": token}, headers=HTML).status_code == 403
    r = client.post(f"/console/policies/{policy.id}/withdraw", data={"csrf_token": token, "reason": "x"}, headers=HTML)
    assert r.status_code == 403
    assert db.session.get(Policy, policy.id).status == "published"


def test_a_post_without_csrf_token_is_400_and_creates_nothing(client, w):
    console_login(client, "shi")
    r = client.post("/console/policies/new", data=form(), headers=HTML)
    assert r.status_code == 400
    assert db.session.execute(select(func.count()).select_from(Policy)).scalar_one() == 0


def test_marketing_creates_publishes_edits_and_withdraws_through_the_console(client, w):
    console_login(client, "shi")
    token = csrf(client, "/console/policies/new")
    data = {**form(audience_all="", audience_tiers="gold"), "csrf_token": token,
            "files": (io.BytesIO(PDF), "细则.pdf")}
    r = client.post("/console/policies/new", data=data, headers=HTML, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    policy = db.session.execute(select(Policy)).scalar_one()
    assert policy.status == "draft" and audiences.load("policy", policy.id) == audiences.Audience(tiers=("gold",))

    assert client.post(f"/console/policies/{policy.id}/publish", data={"csrf_token": token}, headers=HTML).status_code == 302
    assert titles(client, w.a_owner) == {"十二月促销"} and titles(client, w.b_owner) == set()

    edit = {**form(audience_all="", audience_tiers="gold", body="<p>买十送二</p>"), "csrf_token": token}
    assert client.post(f"/console/policies/{policy.id}/edit", data=edit, headers=HTML).status_code == 302
    db.session.expire_all()
    assert db.session.get(Policy, policy.id).version == 2
    page = client.get(f"/console/policies/{policy.id}", headers=HTML).get_data(as_text=True)
    assert "第 2 版" in page and "买十送二" in page

    bad = client.post(f"/console/policies/{policy.id}/withdraw", data={"csrf_token": token, "reason": ""}, headers=HTML)
    assert bad.status_code == 302 and db.session.get(Policy, policy.id).status == "published"
    client.post(f"/console/policies/{policy.id}/withdraw", data={"csrf_token": token, "reason": "活动取消"}, headers=HTML)
    db.session.expire_all()
    assert db.session.get(Policy, policy.id).status == "withdrawn"
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "policy")).scalars().all()
    assert actions == ["policy.create", "policy.publish", "policy.update", "policy.withdraw"]


def test_a_bad_form_answers_422_with_the_reason_and_writes_nothing(client, w):
    console_login(client, "shi")
    token = csrf(client, "/console/policies/new")
    for data, words in (({**form(), "title": ""}, "标题不能为空"),
                        ({**form(audience_all="")}, "请选择受众"),
                        ({**form(audience_all="", audience_dealers="NOPE")}, "NOPE")):
        r = client.post("/console/policies/new", data={**data, "csrf_token": token}, headers=HTML)
        assert r.status_code == 422 and words in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Policy)).scalar_one() == 0


# --- the figures on the console page match the database -----------------------------------------

def _figure(page, name):
    return int(re.search(rf'data-figure="{name}">(\d+)<', page).group(1))


def test_console_figures_for_fifty_dealers_match_the_database(client, w):
    users = []
    for n in range(50):
        dealer = add(Dealer(code=f"F{n:03d}", name=f"测试经销商{n:03d}", tier_id=(w.gold if n % 2 else w.silver).id,
                            region_code="440300"))
        users.append(make_user(dealer, "owner", openid=f"o-f{n:03d}"))
    db.session.commit()
    policy = publish(w, {"regions": ["440300"]}, ack=True)   # the 50 plus DC01
    for n, user in enumerate(users):
        if n % 3 == 0:
            assert client.get(f"{MP}/policies/{policy.id}", headers=auth(user)).status_code == 200
        if n % 5 == 0:
            assert client.post(f"{MP}/policies/{policy.id}/ack", headers=auth(user)).status_code == 200
    db.session.expire_all()

    addressed = set(audiences.dealer_ids(audiences.load("policy", policy.id)))
    delivered = set(db.session.execute(select(PolicyDelivery.dealer_id).where(
        PolicyDelivery.policy_id == policy.id, PolicyDelivery.version == 1)).scalars())
    read = set(db.session.execute(select(PolicyRead.dealer_id).where(PolicyRead.policy_id == policy.id)).scalars())
    acked = set(db.session.execute(select(PolicyAck.dealer_id).where(PolicyAck.policy_id == policy.id)).scalars())
    # Every third opened it; every fifth acknowledged it (which counts as reading).
    expected_read = sum(1 for n in range(50) if n % 3 == 0 or n % 5 == 0)
    assert (len(addressed), len(read), len(acked)) == (51, expected_read, 10)

    console_login(client, "shi")
    page = client.get(f"/console/policies/{policy.id}", headers=HTML).get_data(as_text=True)
    assert _figure(page, "addressed") == len(addressed)
    assert _figure(page, "delivered") == len(delivered & addressed) == 51
    assert _figure(page, "read") == len(read & addressed)
    assert _figure(page, "acked") == len(acked & addressed)

    unread = client.get(f"/console/policies/{policy.id}?show=unread", headers=HTML).get_data(as_text=True)
    assert f"（{51 - len(read)} 家）" in unread
    assert len(re.findall(r"<td>未读</td>", unread)) == 51 - len(read)
    unacked = client.get(f"/console/policies/{policy.id}?show=unacked", headers=HTML).get_data(as_text=True)
    assert f"（{51 - len(acked)} 家）" in unacked
    rows_on_page = len(re.findall(r"<td>未确认</td>", unacked))
    assert rows_on_page == min(reading.STATS_PAGE_SIZE, 51 - len(acked))
    assert client.get(f"/console/policies/{policy.id}?show=bogus", headers=HTML).status_code == 400
    # Unused users of the world stay untouched: nothing recorded for DA01/DB01.
    assert not (read | acked) & {w.dealer_a.id, w.dealer_b.id}
    assert db.session.execute(select(func.count()).select_from(DealerUser)).scalar_one() >= 50


# --- demo data ------------------------------------------------------------------------------------

def test_demo_seed_publishes_policies_for_everyone_one_tier_and_one_region(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    published = db.session.execute(select(Policy).where(Policy.status == "published")).scalars().all()
    found = {p.title: (audiences.load("policy", p.id), p.ack_required, p.version) for p in published}
    shapes = {(a.all_dealers, a.tiers, a.regions) for a, _, _ in found.values()}
    assert shapes == {(True, (), ()), (False, ("gold",), ()), (False, (), ("440000",))}
    assert any(ack for _, ack, _ in found.values()) and not all(ack for _, ack, _ in found.values())
    assert max(v for _, _, v in found.values()) == 2  # one was revised
    assert db.session.execute(select(Policy.status).where(Policy.status == "scheduled")).scalar_one() == "scheduled"
    assert db.session.execute(select(func.count()).select_from(Outbox)).scalar_one() == 0  # nothing sent from the seed
    assert "演示政策" in result.output


# --- PostgreSQL, real threads ------------------------------------------------------------------------

def _pg_marketing():
    from types import SimpleNamespace

    from app.staff.service import create_staff

    row = create_staff(username="shi", name="市场", role="marketing", password="correct-horse-9")
    return SimpleNamespace(id=row.id, name=row.name, role=row.role, active=row.active)


@pytest.mark.postgres
def test_concurrent_opens_and_acknowledgements_record_one_read_per_user_and_one_ack(pg_app, pg_world):
    from tests.test_concurrency import run_concurrently

    marketing = _pg_marketing()
    policy = authoring.create_policy(staff=marketing, fields=fields(ack_required="1"), audience=audiences.EVERYONE)
    authoring.publish_policy(staff=marketing, policy_id=policy.id)
    url = f"{MP}/policies/{policy.id}"
    owner, buyer = auth(pg_world.a_owner), auth(pg_world.a_buyer)
    jobs = [(lambda c, h=h: c.get(url, headers=h)) for h in (owner, owner, owner, buyer)]
    jobs += [(lambda c, h=h: c.post(f"{url}/ack", headers=h)) for h in (owner, owner, buyer, buyer)]
    results = run_concurrently(pg_app, jobs)
    assert [r.status_code for r in results] == [200] * 8, [r.get_json() for r in results]
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(PolicyAck)).scalar_one() == 1
    reads = db.session.execute(select(PolicyRead.user_id)).scalars().all()
    assert sorted(reads) == sorted([pg_world.a_owner.id, pg_world.a_buyer.id])
    acks = {r.get_json()["acked_at"] for r in results[4:]}
    assert len(acks) == 1  # every caller got the one acknowledgement


@pytest.mark.postgres
def test_concurrent_publish_and_reminder_presses_act_once(pg_app, pg_world):
    from tests.test_concurrency import run_concurrently

    marketing = _pg_marketing()
    policy_id = authoring.create_policy(staff=marketing, fields=fields(ack_required="1"), audience=audiences.EVERYONE).id

    def call(action):
        def job(_client):
            with pg_app.app_context():
                try:
                    return action()
                except Exception as exc:  # noqa: BLE001 - the refused ones are DomainErrors
                    return exc
                finally:
                    db.session.remove()
        return job

    published = run_concurrently(pg_app, [call(lambda: authoring.publish_policy(staff=marketing, policy_id=policy_id))] * 4)
    refused = [r for r in published if isinstance(r, Exception)]
    assert len(refused) == 3 and all(getattr(r, "status", None) == 409 for r in refused)
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(PolicyVersion)).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(PolicyDelivery)).scalar_one() == 2

    reminded = run_concurrently(pg_app, [call(lambda: reminders.remind_stragglers(staff=marketing, policy_id=policy_id))] * 4)
    assert sorted(reminded) == [(0, 2), (0, 2), (0, 2), (2, 0)]
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(DealerMessage).where(
        DealerMessage.event == "policy_reminder")).scalar_one() == 2


def test_the_publish_due_command_publishes_what_is_due(runner, w):
    policy = authoring.create_policy(staff=w.staff["marketing"], fields=fields(), audience=audiences.EVERYONE)
    authoring.schedule_policy(staff=w.staff["marketing"], policy_id=policy.id, publish_at=utcnow() + timedelta(minutes=5))
    assert "没有到时间" in runner.invoke(args=["policies", "publish-due"]).output
    db.session.get(Policy, policy.id).publish_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert "已发布 1 条" in runner.invoke(args=["policies", "publish-due"]).output
    db.session.expire_all()
    assert db.session.get(Policy, policy.id).status == "published"


def test_oversized_and_empty_attachments_are_refused_before_anything_is_stored(w):
    from app.kernel.errors import DomainError
    from app.policies import content

    big_pdf = PDF[:-7] + b" " * content.PDF_MAX_BYTES + b"\n%%EOF\n"
    for name, data, code, status in (("大.pdf", big_pdf, "file_too_large", 413), ("空.pdf", b"", "empty_file", 422),
                                     ("半截.pdf", b"%PDF-1.4\n1 0 obj", "invalid_file", 422)):
        with pytest.raises(DomainError) as exc:
            authoring.create_policy(staff=w.staff["marketing"], fields=fields(), audience=audiences.EVERYONE,
                                    files=[("海报.png", png_bytes()), (name, data)])
        assert (exc.value.code, exc.value.status) == (code, status) and name in exc.value.message
    assert db.session.execute(select(func.count()).select_from(Policy)).scalar_one() == 0


def test_console_schedules_in_china_time_and_unschedules(client, w):
    from datetime import datetime

    from app.kernel.clock import BUSINESS_TZ

    policy = authoring.create_policy(staff=w.staff["marketing"], fields=fields(), audience=audiences.EVERYONE)
    console_login(client, "shi")
    token = csrf(client, f"/console/policies/{policy.id}")
    at = (datetime.now(BUSINESS_TZ) + timedelta(days=1)).replace(second=0, microsecond=0)
    r = client.post(f"/console/policies/{policy.id}/schedule", headers=HTML,
                    data={"csrf_token": token, "publish_at": at.strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 302
    db.session.expire_all()
    row = db.session.get(Policy, policy.id)
    assert row.status == "scheduled" and row.publish_at == at
    client.post(f"/console/policies/{policy.id}/schedule", headers=HTML, data={"csrf_token": token, "publish_at": "明天"})
    page = client.get(f"/console/policies/{policy.id}", headers=HTML).get_data(as_text=True)
    assert "发布时间格式应为" in page
    client.post(f"/console/policies/{policy.id}/unschedule", headers=HTML, data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Policy, policy.id).status == "draft"
