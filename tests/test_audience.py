"""The audience service: one rule for who an item is addressed to, the same in Python and SQL."""
import pytest
from sqlalchemy import select

from app.audience import service as audience
from app.audience.service import Audience
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel.errors import DomainError
from tests.factories import add


@pytest.fixture
def dealers(world):
    """DA01 gold Guangzhou, DB01 silver Shanghai, DC01 silver Shenzhen, DD01 gold Shanghai (suspended)."""
    world.dealer_c = add(Dealer(code="DC01", name="深圳", tier_id=world.silver.id, region_code="440300"))
    world.dealer_d = add(Dealer(code="DD01", name="上海金", tier_id=world.gold.id, region_code="310100", status="suspended"))
    db.session.commit()
    return world


ALL = {"DA01", "DB01", "DC01", "DD01"}

CASES = [
    # (what staff chose, who is in it)
    ({"all": True}, ALL),
    ({"tiers": ["gold"]}, {"DA01", "DD01"}),
    ({"tiers": ["gold", "silver"]}, ALL),
    ({"regions": ["440000"]}, {"DA01", "DC01"}),            # a province covers its cities
    ({"regions": ["440300"]}, {"DC01"}),                    # a city only itself
    ({"regions": ["310000", "440100"]}, {"DA01", "DB01", "DD01"}),
    ({"tiers": ["gold"], "regions": ["440000"]}, {"DA01"}),  # tier AND region
    ({"tiers": ["silver"], "regions": ["440000"], "dealers": ["DD01"]}, {"DC01", "DD01"}),  # named dealers always in
    ({"dealers": ["DB01"]}, {"DB01"}),
    ({"dealers": "db01, DC01"}, {"DB01", "DC01"}),          # one string, any case, commas
]


def _codes(ids):
    return set(db.session.execute(select(Dealer.code).where(Dealer.id.in_(ids))).scalars())


def _visible_owner_ids(dealer):
    outer = audience.TARGETS.alias("item")
    condition = audience.visible_condition(
        "policy", outer.c.owner_id, dealer_code=dealer.code, tier_code=dealer.tier.code, region_code=dealer.region_code
    )
    return set(db.session.execute(
        select(outer.c.owner_id).where(outer.c.owner_type == "policy", condition).distinct()
    ).scalars())


def test_python_sql_and_resolution_agree_for_every_rule(app, dealers):
    """For each case: `dealer_ids` (who is messaged), `matches_dealer` (a check on one dealer) and
    `visible_condition` (the mini-program's list) name exactly the expected dealers."""
    parsed = [audience.parse(chosen) for chosen, _ in CASES]
    with db.session.begin_nested():
        for owner_id, aud in enumerate(parsed, start=1):
            audience.save(db.session, "policy", owner_id, aud)
    db.session.commit()
    everyone = db.session.execute(select(Dealer)).scalars().all()
    visible = {d.code: _visible_owner_ids(d) for d in everyone}
    for owner_id, ((chosen, expected), aud) in enumerate(zip(CASES, parsed), start=1):
        with_subtest = f"{chosen} → {sorted(expected)}"
        assert _codes(audience.dealer_ids(aud)) == expected, with_subtest
        assert {d.code for d in everyone if audience.matches_dealer(aud, d)} == expected, with_subtest
        assert {code for code, ids in visible.items() if owner_id in ids} == expected, with_subtest
        assert audience.load("policy", owner_id) == aud


def test_only_active_dealers_when_asked(app, dealers):
    aud = audience.parse({"tiers": ["gold"]})
    assert _codes(audience.dealer_ids(aud, statuses=("active",))) == {"DA01"}


def test_a_dealer_moved_to_another_tier_sees_what_its_new_tier_is_addressed(app, dealers):
    audience.save(db.session, "policy", 1, audience.parse({"tiers": ["gold"]}))
    audience.save(db.session, "policy", 2, audience.parse({"tiers": ["silver"]}))
    db.session.commit()
    dealer_c = dealers.dealer_c
    assert _visible_owner_ids(dealer_c) == {2}
    dealer_c.tier_id = dealers.gold.id
    db.session.commit()
    db.session.refresh(dealer_c)
    assert _visible_owner_ids(dealer_c) == {1}
    assert _codes(audience.dealer_ids(audience.load("policy", 1))) == {"DA01", "DC01", "DD01"}


def test_saving_again_replaces_the_targets(app, dealers):
    audience.save(db.session, "material", 7, audience.parse({"dealers": ["DA01"]}))
    audience.save(db.session, "material", 7, audience.parse({"regions": ["310000"]}))
    db.session.commit()
    assert audience.load("material", 7) == Audience(regions=("310000",))
    assert audience.load("campaign", 7).empty  # another kind of item with the same id is separate


@pytest.mark.parametrize("chosen, message", [
    ({}, "请选择受众"),
    ({"all": False, "tiers": [], "regions": [], "dealers": ""}, "请选择受众"),
    ({"tiers": ["platinum"]}, "等级不存在：platinum"),
    ({"regions": ["999999", "440000"]}, "地区不存在：999999"),
    ({"dealers": "DA01 NOPE1 NOPE2"}, "经销商不存在：NOPE1、NOPE2"),
    ({"tiers": "gold\x00"}, "不能包含控制字符"),
    ({"tiers": 5}, "等级应为列表"),
    ("everyone", "受众格式不正确"),
])
def test_bad_choices_are_refused_in_chinese(app, dealers, chosen, message):
    with pytest.raises(DomainError) as caught:
        audience.parse(chosen)
    assert caught.value.status == 422
    assert message in caught.value.message


def test_describe_in_words(app, dealers):
    assert audience.describe(audience.parse({"all": "on"})) == "全部经销商"
    words = audience.describe(audience.parse({"tiers": ["gold"], "regions": ["440000"], "dealers": ["DB01"]}))
    assert words == "等级：金牌（且）地区：广东省；指定经销商：DB01 上海沪联食品有限公司"


def test_the_console_picker_round_trips(app, dealers):
    from werkzeug.datastructures import MultiDict

    form = MultiDict([("audience_tiers", "gold"), ("audience_regions", "440000"), ("audience_regions", "310000"),
                      ("audience_dealers", "DB01")])
    aud = audience.parse_form(form)
    assert aud == Audience(tiers=("gold",), regions=("440000", "310000"), dealers=("DB01",))
    html = app.jinja_env.from_string(
        '{% from "console/_audience.html" import audience_picker %}{{ audience_picker(choices, aud) }}'
    ).render(choices=audience.form_choices(), aud=aud)
    assert 'value="gold" selected' in html and 'value="440000" selected' in html
    assert 'value="DB01"' in html and 'value="silver" selected' not in html
