"""Internal announcements through group robots: markdown within 4096 bytes, the configured
robots, one post per dedupe key, and the robot's 20 messages a minute."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.notify.models import Outbox
from bots.announce import announce_to_internal_group, compose


def robot_posts(wechat, key):
    return [d for d in wechat.delivered if d["channel"] == "wecom_robot" and d["to"] == key]


@pytest.mark.delivers
def test_announcement_reaches_the_internal_group_once(app, wechat):
    ids = announce_to_internal_group("新政策：金牌返利", "12 月起金牌经销商返利 3%", "https://example.com/p/1",
                                     dedupe_key="policy:1:v1")
    assert len(ids) == 1
    assert announce_to_internal_group("新政策：金牌返利", "12 月起金牌经销商返利 3%", dedupe_key="policy:1:v1") == []
    posts = robot_posts(wechat, app.config["WECOM_ROBOT_KEY"])
    assert len(posts) == 1
    content = posts[0]["body"]["markdown"]["content"]
    assert content.startswith("## 新政策：金牌返利") and "[查看详情](https://example.com/p/1)" in content


def test_long_announcements_are_cut_to_the_robot_limit(app):
    content = compose("很长的公告", "\n".join(f"第 {n} 行：" + "内容" * 40 for n in range(200)))
    assert len(content.encode("utf-8")) <= 4096 and content.endswith("其余已省略")


@pytest.mark.delivers
def test_named_robots_from_config(app, wechat):
    wechat._state.robot_keys.add("sales-robot-key")
    app.config["WECOM_ROBOT_KEYS"] = {"sales": "sales-robot-key"}
    app.config["WECOM_ANNOUNCE_ROBOTS"] = ("default", "sales")
    announce_to_internal_group("群发已下发", "共 3 个群")
    assert len(robot_posts(wechat, "sales-robot-key")) == 1
    assert len(robot_posts(wechat, app.config["WECOM_ROBOT_KEY"])) == 1


@pytest.mark.delivers
def test_more_than_twenty_a_minute_are_held_back_not_lost(app, wechat):
    for n in range(23):
        announce_to_internal_group(f"公告 {n}", "内容")
    assert len(robot_posts(wechat, app.config["WECOM_ROBOT_KEY"])) == 20
    pending = db.session.execute(select(Outbox.status).where(Outbox.event == "announcement")).scalars().all()
    assert pending.count("sent") == 20 and pending.count("pending") == 3
