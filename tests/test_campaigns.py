"""Campaigns to WeCom customer groups, over real HTTP to the stand-in: group sync and mapping,
the plan and the monthly limit, sending (one task per owner), the rep confirming in the WeCom
client, results polling, partial failures, retry, scheduling, cancelling, roles and CSRF."""
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.campaigns.authoring import create_campaign
from app.campaigns.groups import suggest_dealer, sync_groups
from app.campaigns.limits import month_bounds, monthly_limit, remaining_this_month, used_this_month
from app.campaigns.models import Campaign, CampaignGroup, CampaignSender, CustomerGroup
from app.campaigns.planning import compute_plan, freeze_plan
from app.campaigns.reading import get_campaign
from app.campaigns.results import poll_campaign
from app.campaigns.sending import message_body, schedule_campaign, send_campaign, send_now
from app.extensions import db
from app.kernel.clock import utcnow
from app.notify.models import Outbox
from tests.helpers import HTML, console_login, csrf

REP = "WangYeWu"
REP2 = "LiYeWu"


@pytest.fixture
def setup(app, world, staff, wechat):
    """Two reps owning groups in the stand-in: 鑫达 (DA01) has two groups (rep 1 and rep 2),
    沪联 (DB01) one (rep 1), plus an unrelated group."""
    staff["other_rep"].wecom_userid = REP2
    db.session.commit()
    chats = {
        "a1": wechat.add_customer_group("鑫达商贸客户1群", REP, external_members=5),
        "a2": wechat.add_customer_group("鑫达VIP群", REP2, external_members=2),
        "b1": wechat.add_customer_group("沪联食品客户群", REP, external_members=4),
        "x": wechat.add_customer_group("闲聊群", REP, external_members=1),
    }
    sync_groups()
    groups = {key: db.session.execute(select(CustomerGroup).where(CustomerGroup.chat_id == chat)).scalar_one()
              for key, chat in chats.items()}
    for key, dealer in (("a1", world.dealer_a), ("a2", world.dealer_a), ("b1", world.dealer_b)):
        groups[key].dealer_id = dealer.id
    db.session.commit()
    return {"chats": chats, "groups": groups, "world": world, "staff": staff}


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def create(client, *, title="双十二活动", text="全场满 100 减 10", audience=None, links="", images=(),
           miniprograms="", cover=None, materials=""):
    data = {"csrf_token": csrf(client, "/console/campaigns/new"), "title": title, "text": text, "links": links,
            "miniprograms": miniprograms, "materials": materials,
            **(audience if audience is not None else {"audience_all": "1"})}
    if images:
        data["images"] = [(io.BytesIO(b), f"p{n}.png") for n, b in enumerate(images)]
    if cover:
        data["cover"] = (io.BytesIO(cover), "cover.png")
    return client.post("/console/campaigns/new", data=data, headers=HTML, content_type="multipart/form-data")


def new_campaign(client, **kwargs):
    r = create(client, **kwargs)
    assert r.status_code == 302, r.get_data(as_text=True)
    return int(re.search(r"/campaigns/(\d+)", r.headers["Location"]).group(1))


def post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf(client, "/console/campaigns"), **data}, headers=HTML)


def statuses(campaign_id):
    db.session.expire_all()
    rows = db.session.execute(select(CustomerGroup.chat_id, CampaignGroup.status, CampaignGroup.reason)
                              .join(CustomerGroup, CustomerGroup.id == CampaignGroup.group_id)
                              .where(CampaignGroup.campaign_id == campaign_id)).all()
    return {chat: (status, reason) for chat, status, reason in rows}


def senders(campaign_id):
    db.session.expire_all()
    return {s.sender_userid: s for s in db.session.execute(
        select(CampaignSender).where(CampaignSender.campaign_id == campaign_id)).scalars()}


def tasks_for(wechat, userid):
    return [t for t in wechat.group_message_tasks() if t["sender"] == userid]


# --- groups ----------------------------------------------------------------------------------

def test_sync_stores_groups_by_owner_and_marks_vanished_ones_dismissed(setup, wechat):
    a1 = setup["groups"]["a1"]
    assert (a1.name, a1.owner_userid, a1.member_count, a1.external_count) == ("鑫达商贸客户1群", REP, 6, 5)
    assert a1.wecom_created_at is not None and a1.status == "active"
    listed = [r for r in wechat.requests if r["path"] == "/cgi-bin/externalcontact/groupchat/list"]
    assert listed[-1]["json"]["owner_filter"]["userid_list"] == sorted([REP, REP2])
    wechat.dismiss_customer_group(setup["chats"]["x"])
    result = sync_groups()
    assert result["dismissed"] == 1
    db.session.expire_all()
    assert setup["groups"]["x"].status == "dismissed" and setup["groups"]["a1"].status == "active"
    assert setup["groups"]["a1"].dealer_id is not None  # a sync keeps the mapping
    assert db.session.execute(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "groups.sync")).scalar_one() == 2


def test_groups_page_suggests_the_dealer_and_mapping_is_audited(client, setup):
    console_login(client, "shi")
    page = client.get("/console/groups?mapped=yes", headers=HTML).get_data(as_text=True)
    assert "鑫达商贸客户1群" in page and "闲聊群" not in page
    x = setup["groups"]["x"]
    x.name = "广州鑫达老板群"
    db.session.commit()
    page = client.get("/console/groups?mapped=no", headers=HTML).get_data(as_text=True)
    assert "建议：广州鑫达商贸有限公司" in page
    r = client.post(f"/console/groups/{x.id}/dealer", data={"csrf_token": csrf(client, "/console/groups"),
                                                            "dealer": "DA01"}, headers=HTML)
    assert r.status_code == 302
    db.session.expire_all()
    assert x.dealer_id == setup["world"].dealer_a.id
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "groups.map")).scalar_one()
    assert entry.after == {"dealer": "DA01"} and entry.staff_id == setup["staff"]["marketing"].id
    r = client.post(f"/console/groups/{x.id}/dealer", data={"csrf_token": csrf(client, "/console/groups"),
                                                            "dealer": "NOPE"}, headers=HTML)
    assert r.status_code == 302
    assert "经销商编码 NOPE 不存在" in client.get("/console/groups", headers=HTML).get_data(as_text=True)
    db.session.expire_all()
    assert x.dealer_id == setup["world"].dealer_a.id


def test_sync_from_the_console(client, setup, wechat):
    wechat.add_customer_group("沪联新群", REP)
    console_login(client, "boss")
    r = client.post("/console/groups/sync", data={"csrf_token": csrf(client, "/console/groups")}, headers=HTML)
    assert r.status_code == 302
    assert "新增 1 个" in client.get("/console/groups", headers=HTML).get_data(as_text=True)


# --- plan and limit ----------------------------------------------------------------------------

def test_plan_groups_the_audience_groups_by_owner(client, setup):
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_tiers": "gold"})
    page = client.get(f"/console/campaigns/{cid}", headers=HTML).get_data(as_text=True)
    assert "鑫达商贸客户1群" in page and "鑫达VIP群" in page and "沪联食品客户群" not in page
    plan = compute_plan(db.session, db.session.get(Campaign, cid))
    assert {u: [e["group"].chat_id for e in es] for u, es in plan["senders"].items()} == {
        REP: [setup["chats"]["a1"]], REP2: [setup["chats"]["a2"]]}
    assert plan["dropped"] == []


def test_groups_at_the_monthly_limit_are_left_out_with_the_reason(client, setup, app):
    app.config["CAMPAIGN_GROUP_MONTHLY_LIMIT"] = 1
    console_login(client, "shi")
    first = new_campaign(client, audience={"audience_dealers": "DB01"})
    assert post(client, f"/console/campaigns/{first}/send").status_code == 302
    second = new_campaign(client, title="第二次", audience={"audience_dealers": "DB01"})
    page = client.get(f"/console/campaigns/{second}", headers=HTML).get_data(as_text=True)
    assert "本月群发次数已用完（每群每月上限 1 条）" in page
    r = post(client, f"/console/campaigns/{second}/send")
    assert r.status_code == 422 and "没有可以发送的客户群" in r.get_data(as_text=True)
    assert db.session.get(Campaign, second).status == "draft"
    # A wider audience sends to the others and records the one left out.
    third = new_campaign(client, title="第三次")
    assert post(client, f"/console/campaigns/{third}/send").status_code == 302
    rows = statuses(third)
    assert rows[setup["chats"]["b1"]] == ("dropped", "本月群发次数已用完（每群每月上限 1 条）")
    assert rows[setup["chats"]["a1"]][0] == "waiting"


def test_the_default_monthly_limit_is_the_number_of_days_in_the_month(app):
    from datetime import datetime, timezone

    assert app.config["CAMPAIGN_GROUP_MONTHLY_LIMIT"] == 0
    assert monthly_limit(datetime(2026, 2, 10, tzinfo=timezone.utc)) == 28
    assert monthly_limit(datetime(2026, 11, 27, tzinfo=timezone.utc)) == 30


# --- sending, confirming, results -----------------------------------------------------------

@pytest.mark.delivers
def test_send_creates_one_task_per_owner_and_waits_for_the_rep(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client, links="新品介绍 | https://example.com/new | 春季新品", images=[png_bytes()])
    r = post(client, f"/console/campaigns/{cid}/send")
    assert r.status_code == 302
    bodies = [r["json"] for r in wechat.requests if r["path"] == "/cgi-bin/externalcontact/add_msg_template"]
    assert len(bodies) == 2
    by_sender = {b["sender"]: b for b in bodies}
    assert sorted(by_sender[REP]["chat_id_list"]) == sorted([setup["chats"]["a1"], setup["chats"]["b1"]])
    assert by_sender[REP2]["chat_id_list"] == [setup["chats"]["a2"]]
    body = by_sender[REP]
    assert body["chat_type"] == "group" and body["text"] == {"content": "全场满 100 减 10"}
    assert [a["msgtype"] for a in body["attachments"]] == ["image", "link"]
    assert body["attachments"][1]["link"] == {"title": "新品介绍", "url": "https://example.com/new", "desc": "春季新品"}
    assert body["attachments"][0]["image"]["media_id"]
    uploads = [r for r in wechat.requests if r["path"] == "/cgi-bin/media/upload"]
    assert len(uploads) == 1  # uploaded once, used by both tasks
    assert set(statuses(cid).values()) == {("waiting", None)}
    assert {u: s.status for u, s in senders(cid).items()} == {REP: "waiting", REP2: "waiting"}
    assert db.session.get(Campaign, cid).status == "sending"
    page = client.get(f"/console/campaigns/{cid}", headers=HTML).get_data(as_text=True)
    assert page.count("等待业务员确认") >= 3
    # Each rep is told in WeCom; the internal group hears about the campaign.
    reminders = [d for d in wechat.delivered if d["channel"] == "wecom_app" and "群发助手" in d["summary"]]
    assert sorted(d["to"] for d in reminders) == sorted([REP, REP2])
    robot = [d for d in wechat.delivered if d["channel"] == "wecom_robot"]
    assert len(robot) == 1 and "双十二活动" in robot[0]["body"]["markdown"]["content"]


def test_rep_confirmation_and_polling_update_each_group(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client)
    post(client, f"/console/campaigns/{cid}/send")
    task = tasks_for(wechat, REP)[0]
    # The rep sends, leaving 沪联's group out; nothing changes until we ask WeCom.
    ok, _ = wechat.confirm_group_message(task["msgid"], REP, skip=[setup["chats"]["b1"]])
    assert ok
    assert statuses(cid)[setup["chats"]["a1"]][0] == "waiting"
    r = post(client, f"/console/campaigns/{cid}/poll")
    assert r.status_code == 302
    rows = statuses(cid)
    assert rows[setup["chats"]["a1"]] == ("sent", None)
    assert rows[setup["chats"]["b1"]] == ("not_sent", "业务员发送时未包含该群")
    assert rows[setup["chats"]["a2"]] == ("waiting", None)
    assert senders(cid)[REP].status == "sent" and senders(cid)[REP2].status == "waiting"
    assert db.session.get(Campaign, cid).status == "sending"
    # Sent messages count toward the month; the second rep sends, the campaign is done.
    used = used_this_month(db.session, [setup["groups"]["a1"].id, setup["groups"]["b1"].id])
    assert used == {setup["groups"]["a1"].id: 1}
    wechat.confirm_group_message(tasks_for(wechat, REP2)[0]["msgid"], REP2)
    poll_campaign(cid)
    assert statuses(cid)[setup["chats"]["a2"]] == ("sent", None)
    assert db.session.get(Campaign, cid).status == "done"


def test_a_group_over_wecoms_monthly_limit_fails_with_the_reason(client, setup, wechat):
    wechat.set_group_monthly_limit(0)  # WeCom counts messages from elsewhere too
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_dealers": "DB01"})
    post(client, f"/console/campaigns/{cid}/send")
    wechat.confirm_group_message(tasks_for(wechat, REP)[0]["msgid"], REP)
    poll_campaign(cid)
    assert statuses(cid)[setup["chats"]["b1"]] == ("failed", "该群已收到其他群发消息，达到本月接收上限")
    assert used_this_month(db.session, [setup["groups"]["b1"].id]) == {}


def test_one_sender_failing_leaves_the_others_going_and_can_be_retried(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client)
    # The first add_msg_template call (senders go in id order: rep 1 first) answers -1.
    wechat.fail_next("/cgi-bin/externalcontact/add_msg_template", errcode=-1)
    post(client, f"/console/campaigns/{cid}/send")
    s = senders(cid)
    failed = [u for u, x in s.items() if x.status == "failed"]
    assert len(failed) == 1 and s[failed[0]].errcode == -1
    other = REP2 if failed[0] == REP else REP
    assert s[other].status == "waiting"
    rows = statuses(cid)
    failed_chats = [c for c, (status, _) in rows.items() if status == "failed"]
    assert failed_chats and all("创建群发任务失败（-1" in rows[c][1] for c in failed_chats)
    page = client.get(f"/console/campaigns/{cid}", headers=HTML).get_data(as_text=True)
    assert "创建任务失败" in page and "重试该业务员" in page
    r = post(client, f"/console/campaigns/{cid}/senders/{s[failed[0]].id}/retry")
    assert r.status_code == 302
    assert senders(cid)[failed[0]].status == "waiting"
    assert all(statuses(cid)[c][0] == "waiting" for c in failed_chats)
    assert db.session.execute(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "campaign.retry")).scalar_one() == 1


def test_groups_in_fail_list_are_failed_per_group(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_dealers": "DB01"})
    # The group changed hands in WeCom after the last sync: the old owner cannot send to it.
    b1 = setup["groups"]["b1"]
    wechat_group = wechat._state.contact._groups[setup["chats"]["b1"]]
    wechat_group["owner"] = REP2
    post(client, f"/console/campaigns/{cid}/send")
    assert statuses(cid)[b1.chat_id] == ("failed", "企业微信拒绝向该群创建群发（fail_list）")
    assert db.session.get(Campaign, cid).status == "sending"  # the (empty) task still waits for the rep


def test_unknown_sender_fails_with_wecoms_errcode(client, setup, wechat):
    setup["groups"]["b1"].owner_userid = "Gone"
    db.session.commit()
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_dealers": "DB01"})
    post(client, f"/console/campaigns/{cid}/send")
    sender = senders(cid)["Gone"]
    assert (sender.status, sender.errcode) == ("failed", 60111)
    assert db.session.get(Campaign, cid).status == "done"


def test_mini_program_cards_need_a_cover_and_send_its_media_id(client, setup, wechat, app):
    console_login(client, "shi")
    r = create(client, miniprograms="新品订货 | pages/index/index.html")
    assert r.status_code == 422 and "封面图" in r.get_data(as_text=True)
    cid = new_campaign(client, miniprograms="新品订货 | pages/index/index.html", cover=png_bytes(),
                       audience={"audience_dealers": "DB01"})
    post(client, f"/console/campaigns/{cid}/send")
    body = [r["json"] for r in wechat.requests if r["path"] == "/cgi-bin/externalcontact/add_msg_template"][0]
    card = body["attachments"][0]["miniprogram"]
    assert card["appid"] == app.config["WECHAT_APP_ID"] and card["page"] == "pages/index/index.html"
    assert card["pic_media_id"] and card["title"] == "新品订货"


def test_too_many_attachments_and_empty_messages_are_refused(client, setup):
    console_login(client, "shi")
    links = "\n".join(f"链接{n} | https://example.com/{n}" for n in range(10))
    r = create(client, links=links)
    assert r.status_code == 422 and "附件最多 9 个" in r.get_data(as_text=True)
    r = create(client, text="", links="")
    assert r.status_code == 422 and "文字内容不能为空" in r.get_data(as_text=True)
    r = create(client, audience={})
    assert r.status_code == 422 and "请选择受众" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0


# --- reminders --------------------------------------------------------------------------------

@pytest.mark.delivers
def test_reps_are_reminded_of_pending_tasks_without_duplicates(client, setup, wechat, app):
    app.config["CAMPAIGN_REMIND_HOURS"] = 0
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_dealers": "DB01"})
    post(client, f"/console/campaigns/{cid}/send")
    for _ in range(5):
        poll_campaign(cid)
    rows = db.session.execute(select(Outbox.dedupe_key).where(Outbox.event == "campaign_remind")).scalars().all()
    assert len(rows) == app.config["CAMPAIGN_MAX_REMINDERS"] == 3
    assert len(set(rows)) == 3
    reminded = [d for d in wechat.delivered if d["channel"] == "wecom_app" and d["to"] == REP]
    assert len(reminded) == 3 and "提醒" in reminded[-1]["summary"]


# --- scheduling and cancelling ------------------------------------------------------------------

def test_a_scheduled_campaign_is_sent_by_the_tick_when_due(client, setup, wechat):
    from app.campaigns.jobs import tick

    console_login(client, "shi")
    cid = new_campaign(client)
    r = post(client, f"/console/campaigns/{cid}/schedule", scheduled_at="2099-01-01T09:00")
    assert r.status_code == 302
    campaign = db.session.get(Campaign, cid)
    assert campaign.status == "scheduled" and campaign.scheduled_at.year == 2099
    tick()
    assert tasks_for(wechat, REP) == []
    campaign.scheduled_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    tick()
    assert len(tasks_for(wechat, REP)) == 1 and db.session.get(Campaign, cid).status == "sending"
    tick()  # a second run creates nothing new
    assert len(tasks_for(wechat, REP)) == 1
    r = post(client, f"/console/campaigns/{cid}/schedule", scheduled_at="2099-01-01T09:00")
    assert r.status_code == 409 and "发送中" in r.get_data(as_text=True)


def test_schedule_in_the_past_or_garbled_is_refused(client, setup):
    console_login(client, "shi")
    cid = new_campaign(client)
    for value in ("2001-01-01T09:00", "明天"):
        r = post(client, f"/console/campaigns/{cid}/schedule", scheduled_at=value)
        assert r.status_code == 422
    assert db.session.get(Campaign, cid).status == "draft"


def test_cancel_before_sending_sends_nothing(client, setup, wechat):
    from app.campaigns.jobs import tick

    console_login(client, "shi")
    cid = new_campaign(client)
    post(client, f"/console/campaigns/{cid}/schedule", scheduled_at="2099-01-01T09:00")
    assert post(client, f"/console/campaigns/{cid}/cancel").status_code == 302
    campaign = db.session.get(Campaign, cid)
    campaign.scheduled_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    tick()
    assert wechat.group_message_tasks() == [] and db.session.get(Campaign, cid).status == "cancelled"
    assert post(client, f"/console/campaigns/{cid}/send").status_code == 409


def test_cancel_while_sending_stops_unconfirmed_tasks_only(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client)
    post(client, f"/console/campaigns/{cid}/send")
    wechat.confirm_group_message(tasks_for(wechat, REP)[0]["msgid"], REP)
    poll_campaign(cid)
    r = post(client, f"/console/campaigns/{cid}/cancel")
    assert r.status_code == 302
    stopped = [r["json"]["msgid"] for r in wechat.requests if r["path"] == "/cgi-bin/externalcontact/cancel_groupmsg_send"]
    assert stopped == [tasks_for(wechat, REP2)[0]["msgid"]]
    rows = statuses(cid)
    assert rows[setup["chats"]["a1"]][0] == "sent"  # what was sent cannot be recalled
    assert rows[setup["chats"]["a2"]][0] == "cancelled"
    assert db.session.get(Campaign, cid).status == "done"
    ok, message = wechat.confirm_group_message(tasks_for(wechat, REP2)[0]["msgid"], REP2)
    assert not ok and "停止" in message


# --- roles and CSRF --------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["rep1", "money", "cang"])
def test_only_admin_and_marketing_manage_campaigns(client, setup, username):
    console_login(client, username)
    assert client.get("/console/campaigns", headers=HTML).status_code == 403
    assert client.get("/console/campaigns/new", headers=HTML).status_code == 403
    token = csrf(client, "/console/")
    r = client.post("/console/campaigns/new", data={"csrf_token": token, "title": "x", "audience_all": "1"},
                    headers=HTML)
    assert r.status_code == 403
    expected = 200 if username == "rep1" else 403
    assert client.get("/console/groups", headers=HTML).status_code == expected


def test_posts_without_csrf_are_refused(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client)
    for path in (f"/console/campaigns/{cid}/send", f"/console/campaigns/{cid}/cancel", "/console/groups/sync",
                 f"/console/groups/{setup['groups']['x'].id}/dealer", "/console/campaigns/new"):
        r = client.post(path, data={"dealer": "DA01", "title": "x", "audience_all": "1"}, headers=HTML)
        assert r.status_code == 400, path
    assert db.session.get(Campaign, cid).status == "draft" and wechat.group_message_tasks() == []
    assert db.session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 1


def test_campaign_actions_are_audited(client, setup):
    console_login(client, "boss")
    cid = new_campaign(client)
    post(client, f"/console/campaigns/{cid}/send")
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "campaign")
                                 .order_by(AuditEntry.id)).scalars().all()
    assert actions == ["campaign.create", "campaign.send"]
    page = client.get("/console/audit?entity_type=campaign", headers=HTML).get_data(as_text=True)
    assert "新建客户群群发" in page and "立即发送客户群群发" in page


def test_unknown_campaign_is_404(client, setup):
    console_login(client, "shi")
    assert client.get("/console/campaigns/999", headers=HTML).status_code == 404


def test_dealer_suggestions_from_trade_names():
    from types import SimpleNamespace

    dealers = [SimpleNamespace(id=n, name=name) for n, name in enumerate(
        ("广州市天河区鑫达商贸有限公司", "上海沪联食品贸易有限公司", "深圳市南山区鹏程酒店用品有限公司"))]
    assert suggest_dealer("天河鑫达门店老板群", dealers).id == 0
    assert suggest_dealer("沪联食品客户福利群", dealers).id == 1
    assert suggest_dealer("鹏程酒店用品采购群", dealers).id == 2
    assert suggest_dealer("周末羽毛球群", dealers) is None


def test_demo_groups_and_campaign_go_through_the_stand_in(app, wechat):
    from devtools.demo import seed_demo
    from devtools.demo_activity import DEMO_CUSTOMER_GROUPS

    seed_demo()
    for chat_id, name, owner, _, members in DEMO_CUSTOMER_GROUPS:
        wechat.add_customer_group(name, owner, external_members=members, chat_id=chat_id)
    assert sync_groups()["dismissed"] == 0
    campaign = db.session.execute(select(Campaign)).scalar_one()
    plan = compute_plan(db.session, campaign)
    assert sorted(e["group"].chat_id for es in plan["senders"].values() for e in es) == [
        "wrDemoD001Group01", "wrDemoD001Group02", "wrDemoD002Group01", "wrDemoD004Group01"]
    from app.staff.models import Staff

    marketing = db.session.execute(select(Staff).where(Staff.role == "marketing")).scalar_one()
    send_now(staff=marketing, campaign_id=campaign.id)
    for task in wechat.group_message_tasks():
        wechat.confirm_group_message(task["msgid"], task["sender"])
    poll_campaign(campaign.id)
    assert set(s for s, _ in statuses(campaign.id).values()) == {"sent"}
    assert db.session.get(Campaign, campaign.id).status == "done"


@pytest.mark.postgres
def test_two_workers_sending_one_campaign_create_each_task_once(pg_app, pg_world, wechat):
    """The send job may run twice at once (the scheduler and the tick): the campaign row lock
    freezes the plan once, and each sender is claimed before its task is created."""
    import threading

    from app.audience.service import EVERYONE
    from app.staff.models import Staff
    from tests.factories import add

    add(Staff(username="rep9", name="赵业务", role="sales", wecom_userid=REP2))
    marketing = add(Staff(username="shi", name="市场", role="marketing"))
    db.session.commit()
    wechat.add_customer_group("鑫达商贸客户1群", REP)
    wechat.add_customer_group("鑫达VIP群", REP2)
    wechat.add_customer_group("沪联食品客户群", REP)
    sync_groups()
    for group in db.session.execute(select(CustomerGroup)).scalars():
        group.dealer_id = pg_world.dealer_b.id if "沪联" in group.name else pg_world.dealer_a.id
    db.session.commit()
    campaign = create_campaign(staff=marketing, title="并发", text="你好", audience=EVERYONE, attachments=[])
    with db.session.begin():
        row = db.session.get(Campaign, campaign.id)
        row.status, row.scheduled_at = "scheduled", utcnow() - timedelta(seconds=1)
    db.session.commit()

    barrier = threading.Barrier(4)
    errors = []

    def worker():
        with pg_app.app_context():
            barrier.wait()
            try:
                send_campaign(campaign.id)
            except Exception as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(t["sender"] for t in wechat.group_message_tasks()) == sorted([REP, REP2])
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(CampaignGroup)).scalar_one() == 3
    assert {s.status for s in senders(campaign.id).values()} == {"waiting"}


@pytest.mark.redis
def test_scheduling_books_the_send_on_rqs_scheduler(rq_app, rq_world, wechat):
    from rq import Queue

    from app import jobs
    from app.audience.service import EVERYONE
    from app.staff.models import Staff
    from tests.factories import add

    marketing = add(Staff(username="shi", name="市场", role="marketing"))
    db.session.commit()
    wechat.add_customer_group("鑫达商贸客户1群", REP)
    sync_groups()
    db.session.execute(CustomerGroup.__table__.update().values(dealer_id=rq_world.dealer_a.id))
    db.session.commit()
    campaign = create_campaign(staff=marketing, title="定时", text="你好", audience=EVERYONE, attachments=[])
    schedule_campaign(staff=marketing, campaign_id=campaign.id, at=utcnow() + timedelta(hours=2))
    registry = Queue("low", connection=jobs.redis_connection()).scheduled_job_registry
    job_ids = registry.get_job_ids()
    assert len(job_ids) == 1
    job = Queue("low", connection=jobs.redis_connection()).fetch_job(job_ids[0])
    assert job.func_name == "app.campaigns.service.send_campaign" and job.args == (campaign.id,)


def test_unconfirmed_tasks_hold_their_place_only_in_the_month_they_went_out(client, setup, app):
    app.config["CAMPAIGN_GROUP_MONTHLY_LIMIT"] = 1
    console_login(client, "shi")
    cid = new_campaign(client, audience={"audience_dealers": "DB01"})
    post(client, f"/console/campaigns/{cid}/send")
    b1 = setup["groups"]["b1"].id
    assert remaining_this_month(db.session, [b1]) == {b1: 0}
    campaign = db.session.get(Campaign, cid)
    campaign.sent_at = month_bounds()[0] - timedelta(days=3)
    db.session.commit()
    assert remaining_this_month(db.session, [b1]) == {b1: 1}


def test_a_sender_stuck_creating_is_matched_to_its_wecom_task_or_created_again(client, setup, wechat, app):
    """A worker died after WeCom created one task and before another was asked for."""
    from app.campaigns.jobs import tick
    from app.integrations.wechat_gateways import wecom_contact_gateway

    console_login(client, "shi")
    cid = new_campaign(client)
    campaign = db.session.get(Campaign, cid)
    campaign.status, campaign.scheduled_at = "scheduled", utcnow()
    db.session.commit()
    with db.session.no_autoflush:
        plan = compute_plan(db.session, campaign)
        freeze_plan(db.session, campaign, plan)
    campaign.status, campaign.sent_at = "sending", utcnow()
    db.session.commit()
    rows = senders(cid)
    long_ago = utcnow() - timedelta(minutes=15)
    for row in rows.values():
        row.status, row.updated_at = "creating", long_ago
    db.session.commit()
    chats = [setup["chats"]["a1"], setup["chats"]["b1"]]
    answer = wecom_contact_gateway(app).add_msg_template(
        message_body(db.session.get(Campaign, cid), REP, chats))
    tick()
    rows = senders(cid)
    assert rows[REP].status == "waiting" and rows[REP].msgid == answer["msgid"]
    assert len(tasks_for(wechat, REP)) == 1  # adopted, not created twice
    assert rows[REP2].status == "waiting" and len(tasks_for(wechat, REP2)) == 1  # never created: created now
    assert {s for s, _ in statuses(cid).values()} == {"waiting"}


def test_images_larger_than_the_default_body_limit_are_accepted(client, setup, app):
    import os

    buffer = io.BytesIO()
    Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    console_login(client, "shi")
    cid = new_campaign(client, images=[data])
    assert [a.kind for a in db.session.get(Campaign, cid).attachments] == ["image"]
    big = b"\x89PNG" + b"0" * app.config["UPLOAD_MAX_BYTES"]
    r = create(client, images=[big])
    assert r.status_code == 422 and "图片不能超过" in r.get_data(as_text=True)


def test_expired_tokens_are_refreshed_for_uploads_and_contact_calls(client, setup, wechat):
    console_login(client, "shi")
    cid = new_campaign(client, images=[png_bytes()], audience={"audience_dealers": "DB01"})
    wechat.expire_tokens()
    post(client, f"/console/campaigns/{cid}/send")
    assert senders(cid)[REP].status == "waiting"
    uploads = [r for r in wechat.requests if r["path"] == "/cgi-bin/media/upload"]
    assert len(uploads) == 2  # the first answered 42001, the second carried a fresh token
    wechat.expire_tokens()
    assert sync_groups()["groups"] == 4


# --- attachments from the material library ------------------------------------------------------

def test_materials_from_the_library_go_out_as_their_wecom_attachments(client, setup, wechat):
    from tests.materials_support import make_material, mp4_bytes, pdf_bytes

    marketer = setup["staff"]["marketing"]
    picture = make_material(marketer, "image", title="新品主图")
    video = make_material(marketer, "video", title="开箱视频")
    price_list = make_material(marketer, "file", title="价目表")
    link = make_material(marketer, "link", title="品牌故事", summary="三十年酿造")
    console_login(client, "shi")
    form = client.get("/console/campaigns/new", headers=HTML).get_data(as_text=True)
    assert f"#{picture.id} 新品主图（图片）" in form
    cid = new_campaign(client, text="", materials=f"{picture.id} {video.id},{price_list.id} {link.id}")
    assert post(client, f"/console/campaigns/{cid}/send").status_code == 302

    body = next(r["json"] for r in wechat.requests if r["path"] == "/cgi-bin/externalcontact/add_msg_template")
    assert [a["msgtype"] for a in body["attachments"]] == ["image", "video", "file", "link"]
    assert body["attachments"][3]["link"] == {"title": "品牌故事", "url": "https://brand.example.com/spring",
                                              "desc": "三十年酿造"}
    uploads = [r for r in wechat.requests if r["path"] == "/cgi-bin/media/upload"]
    assert [u["query"]["type"] for u in uploads] == ["image", "video", "file"]
    # The campaign keeps its own copies: a material changed later does not change what was planned.
    stored = get_campaign(cid).attachments
    assert [a.kind for a in stored] == ["image", "video", "file", "link"]
    assert all(a.storage_key.startswith("campaigns/") for a in stored if a.kind != "link")
    from app.storage import get_storage
    assert get_storage().get(stored[1].storage_key) == mp4_bytes()
    assert get_storage().get(stored[2].storage_key) == pdf_bytes()
    assert stored[2].title == "价目表.pdf"  # WeCom shows the file under the name it was uploaded with


@pytest.mark.parametrize("materials, words", [
    ("999999", "素材编号 999999 不存在"),
    ("abc", "素材编号应为整数"),
])
def test_unusable_library_materials_are_refused_in_chinese(client, setup, materials, words):
    console_login(client, "shi")
    r = create(client, materials=materials)
    assert r.status_code == 422 and words in r.get_data(as_text=True)


def test_a_draft_material_cannot_be_attached(client, setup):
    from tests.materials_support import make_material

    draft = make_material(setup["staff"]["marketing"], "image", title="草稿图", publish=False)
    console_login(client, "shi")
    r = create(client, materials=str(draft.id))
    assert r.status_code == 422 and "尚未发布或已撤回" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0
