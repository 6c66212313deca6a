"""The material library from the dealer's side: only published, valid-today materials
addressed to the dealer now; search and tag filters; foreign or unaddressed ids answer 404
like missing ones; downloads; what to forward per kind; share events; campaign attachments."""
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from app.audience.service import Audience
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel.clock import business_today
from app.kernel.errors import DomainError
from app.materials.attachments import campaign_attachment
from app.materials.authoring import publish_material, withdraw_material
from app.materials.files import FileIn
from app.materials.models import Material, MaterialShare
from tests.factories import add, auth, make_user
from tests.helpers import MP
from tests.materials_support import image_bytes, make_material, mp4_bytes, pdf_bytes

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def dealers(world, staff):
    """DA01 gold Guangzhou, DB01 silver Shanghai, DC01 silver Shenzhen (each with an owner)."""
    world.dealer_c = add(Dealer(code="DC01", name="深圳南山商行", tier_id=world.silver.id, region_code="440300",
                                rep_id=world.rep.id))
    world.c_owner = make_user(world.dealer_c, "owner")
    db.session.commit()
    world.staff = staff
    world.marketing = staff["marketing"]
    return world


def titles(client, user, query=""):
    r = client.get(f"{MP}/materials{query}", headers=auth(user))
    assert r.status_code == 200, r.get_json()
    return [item["title"] for item in r.get_json()["items"]]


def get(client, user, material_id):
    return client.get(f"{MP}/materials/{material_id}", headers=auth(user))


def share(client, user, material_id):
    return client.post(f"{MP}/materials/{material_id}/share", headers=auth(user))


def local_get(client, url):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


# --- audience, through the endpoints ---------------------------------------------------------

def test_each_dealer_sees_exactly_what_its_audience_rules_address_to_it(client, dealers):
    w = dealers
    make_material(w.marketing, title="全部", audience={"all": True})
    make_material(w.marketing, title="金牌", audience={"tiers": ["gold"]})
    make_material(w.marketing, title="广东", audience={"regions": ["440000"]})
    make_material(w.marketing, title="银牌且广东", audience={"tiers": ["silver"], "regions": ["440000"]})
    make_material(w.marketing, title="指定上海沪联", audience={"dealers": ["DB01"]})

    assert sorted(titles(client, w.a_buyer)) == sorted(["全部", "金牌", "广东"])
    assert sorted(titles(client, w.b_owner)) == sorted(["全部", "指定上海沪联"])
    assert sorted(titles(client, w.c_owner)) == sorted(["全部", "广东", "银牌且广东"])


def test_a_dealer_moved_to_another_tier_sees_its_new_tiers_materials(client, dealers):
    w = dealers
    gold = make_material(w.marketing, title="金牌专享", audience={"tiers": ["gold"]})
    silver = make_material(w.marketing, title="银牌专享", audience={"tiers": ["silver"]})
    assert titles(client, w.b_owner) == ["银牌专享"]
    assert get(client, w.b_owner, gold.id).status_code == 404

    w.dealer_b.tier_id = w.gold.id  # moved after both were published
    db.session.commit()

    assert titles(client, w.b_owner) == ["金牌专享"]
    assert get(client, w.b_owner, gold.id).status_code == 200
    assert get(client, w.b_owner, silver.id).status_code == 404
    assert share(client, w.b_owner, silver.id).status_code == 404


def test_an_empty_audience_is_refused(app, dealers):
    with pytest.raises(DomainError) as refused:
        make_material(dealers.marketing, audience={})
    assert refused.value.status == 422 and "受众" in refused.value.message
    with pytest.raises(DomainError):
        make_material(dealers.marketing, audience=Audience())
    assert db.session.execute(select(func.count()).select_from(Material)).scalar_one() == 0


# --- status and validity ---------------------------------------------------------------------

def test_only_published_materials_valid_today_are_listed(client, dealers):
    w = dealers
    today = business_today()
    make_material(w.marketing, title="长期")
    make_material(w.marketing, title="今天起", valid_from=today)
    make_material(w.marketing, title="今天止", valid_to=today)
    make_material(w.marketing, title="明天起", valid_from=today + timedelta(days=1))
    make_material(w.marketing, title="昨天止", valid_to=today - timedelta(days=1))
    make_material(w.marketing, title="草稿", publish=False)
    withdrawn = make_material(w.marketing, title="已撤回")
    withdraw_material(staff=w.marketing, material_id=withdrawn.id)

    assert sorted(titles(client, w.a_buyer)) == sorted(["长期", "今天起", "今天止"])
    hidden = db.session.execute(select(Material.id).where(Material.title.in_(["明天起", "昨天止", "草稿", "已撤回"]))).scalars()
    for material_id in hidden:
        assert get(client, w.a_buyer, material_id).status_code == 404


def test_republishing_puts_a_material_first_again(client, dealers):
    w = dealers
    first = make_material(w.marketing, title="第一")
    make_material(w.marketing, title="第二")
    assert titles(client, w.a_buyer) == ["第二", "第一"]
    withdraw_material(staff=w.marketing, material_id=first.id)
    publish_material(staff=w.marketing, material_id=first.id)
    assert titles(client, w.a_buyer) == ["第一", "第二"]


def test_valid_to_before_valid_from_is_refused(app, dealers):
    today = business_today()
    with pytest.raises(DomainError) as refused:
        make_material(dealers.marketing, valid_from=today, valid_to=today - timedelta(days=1))
    assert refused.value.details == {"field": "valid_to"}


# --- isolation -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST share"])
def test_an_unaddressed_id_answers_exactly_like_a_missing_one_and_records_nothing(client, dealers, method):
    w = dealers
    only_a = make_material(w.marketing, title="只给鑫达", audience={"dealers": ["DA01"]})
    draft = make_material(w.marketing, title="草稿", publish=False)

    def probe(material_id):
        return get(client, w.b_owner, material_id) if method == "GET" else share(client, w.b_owner, material_id)

    missing = probe(999_999)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "material_not_found" and CJK.search(missing.get_json()["error"]["message"])
    for material in (only_a, draft):
        r = probe(material.id)
        assert r.status_code == 404 and r.get_json() == missing.get_json()
    assert db.session.execute(select(func.count()).select_from(MaterialShare)).scalar_one() == 0
    # ...while A reaches its own.
    assert get(client, w.a_buyer, only_a.id).status_code == 200


def test_an_unbound_wechat_user_gets_403_and_a_viewer_may_read_and_share(client, dealers):
    from app.dealers.identity import issue_token

    w = dealers
    material = make_material(w.marketing)
    stranger = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for method, path in (("GET", f"/materials/{material.id}"), ("POST", f"/materials/{material.id}/share")):
        r = client.open(MP + path, method=method, headers=stranger)
        assert (r.status_code, r.get_json()["error"]["code"]) == (403, "not_bound")
    assert get(client, w.a_viewer, material.id).status_code == 200
    assert share(client, w.a_viewer, material.id).status_code == 200


# --- search, tags, kinds, paging -------------------------------------------------------------

def test_search_by_title_or_tag_filter_by_tag_and_kind_and_tag_chips(client, dealers):
    w = dealers
    make_material(w.marketing, "poster", title="春节海报", tags=["春节", "促销"])
    make_material(w.marketing, "article", title="新品上市说明", tags=["新品"])
    make_material(w.marketing, "link", title="品牌故事", tags=["品牌", "春节"])
    make_material(w.marketing, title="金牌专享图", tags=["春节"], audience={"tiers": ["gold"]})

    assert sorted(titles(client, w.b_owner, "?q=春节")) == ["品牌故事", "春节海报"]  # title or tag
    assert titles(client, w.b_owner, "?q=新品") == ["新品上市说明"]
    assert titles(client, w.b_owner, "?tag=促销") == ["春节海报"]
    assert titles(client, w.b_owner, "?kind=link") == ["品牌故事"]
    assert titles(client, w.b_owner, "?q=%25") == []  # LIKE wildcards are literal
    body = client.get(f"{MP}/materials?tag=春节", headers=auth(w.b_owner)).get_json()
    # Chips count only what this dealer may see (the gold-only one is not counted for B).
    assert body["tags"] == [{"tag": "春节", "count": 2}, {"tag": "促销", "count": 1}, {"tag": "品牌", "count": 1},
                            {"tag": "新品", "count": 1}]
    a_chips = client.get(f"{MP}/materials", headers=auth(w.a_buyer)).get_json()["tags"]
    assert a_chips[0] == {"tag": "春节", "count": 3}


def test_paging_and_bad_query_parameters(client, dealers):
    w = dealers
    for n in range(5):
        make_material(w.marketing, "link", title=f"链接{n}")
    page = client.get(f"{MP}/materials?page=2&page_size=2", headers=auth(w.a_buyer)).get_json()
    assert [i["title"] for i in page["items"]] == ["链接2", "链接1"] and page["total"] == 5
    for query in ("?kind=pdf", "?page=0", "?page_size=101", "?nope=1"):
        r = client.get(f"{MP}/materials{query}", headers=auth(w.a_buyer))
        assert r.status_code == 422, query
        assert CJK.search(r.get_json()["error"]["message"])


# --- detail and download ---------------------------------------------------------------------

def test_detail_has_signed_urls_and_a_download_with_the_file_name(client, dealers):
    w = dealers
    doc = make_material(w.marketing, "file", title="价目表", file=FileIn(pdf_bytes(), "C:\\docs\\2027年价目表.docx"))
    body = get(client, w.a_buyer, doc.id).get_json()
    file = body["file"]
    assert file["content_type"] == "application/pdf" and file["file_name"] == "2027年价目表.pdf"  # type from the bytes
    assert file["size"] == len(pdf_bytes())
    inline = local_get(client, file["url"])
    assert inline.status_code == 200 and inline.data == pdf_bytes() and inline.mimetype == "application/pdf"
    assert inline.headers["Content-Disposition"] == "attachment"  # not an image: always a download
    download = local_get(client, file["download_url"])
    assert download.status_code == 200 and download.data == pdf_bytes()
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''2027%E5%B9%B4" in disposition
    # The download name is signed: changing it breaks the URL.
    parts = urlsplit(file["download_url"])
    query = parse_qs(parts.query)
    forged = client.get(parts.path, query_string={"e": query["e"][0], "s": query["s"][0], "d": "evil.html"})
    assert forged.status_code == 404


def test_an_article_body_is_sanitised_before_it_is_stored(client, dealers):
    w = dealers
    article = make_material(w.marketing, "article", title="图文", body_html=(
        '<h2>标题</h2><p onclick="steal()">正文<script>alert(1)</script><a href="javascript:alert(1)">坏链接</a>'
        '<a href="https://brand.example.com">好链接</a></p><iframe src="https://x"></iframe><style>p{}</style>'))
    body = get(client, w.a_buyer, article.id).get_json()["body_html"]
    assert "<script" not in body and "onclick" not in body and "javascript:" not in body and "<iframe" not in body
    assert "<style" not in body
    assert "<h2>标题</h2>" in body and 'href="https://brand.example.com"' in body and "noopener" in body
    with pytest.raises(DomainError) as refused:
        make_material(w.marketing, "article", body_html="<script>alert(1)</script>")
    assert refused.value.details == {"field": "body_html"}


# --- what to forward, per kind ---------------------------------------------------------------

def test_share_payload_per_kind_and_each_share_is_recorded(client, dealers, app):
    w = dealers
    made = {
        "image": make_material(w.marketing, "image", title="产品图"),
        "poster": make_material(w.marketing, "poster", title="海报"),
        "video": make_material(w.marketing, "video", title="短视频",
                               cover=FileIn(image_bytes("JPEG", (640, 360)), "poster.jpg")),
        "file": make_material(w.marketing, "file", title="价目表"),
        "article": make_material(w.marketing, "article", title="图文",
                                 cover=FileIn(image_bytes("PNG", (500, 400)), "c.png")),
        "link": make_material(w.marketing, "link", title="活动页"),
        "own card": make_material(w.marketing, "miniprogram", title="本品牌小程序卡片"),
        "other card": make_material(w.marketing, "miniprogram", title="合作小程序卡片", mp_appid="wx1234567890abcdef",
                                    mp_path="/pages/index/index"),
    }
    got = {}
    for name, material in made.items():
        r = share(client, w.a_buyer, material.id)
        assert r.status_code == 200, r.get_json()
        got[name] = r.get_json()
        assert got[name]["title"] == material.title and got[name]["kind"] == material.kind

    for name in ("image", "poster"):
        assert got[name]["method"] == "share_image_menu"
        [image] = got[name]["images"]
        assert local_get(client, image["url"]).data[:8] == b"\x89PNG\r\n\x1a\n"
        assert local_get(client, image["thumb_url"]).mimetype == "image/jpeg"
    video = got["video"]
    assert video["method"] == "share_video_message" and video["video"]["file_name"].endswith(".mp4")
    assert local_get(client, video["video"]["url"]).data == mp4_bytes()
    assert local_get(client, video["video"]["thumb_url"]).mimetype == "image/jpeg"
    file = got["file"]
    assert file["method"] == "share_file_message" and file["file"]["size"] == len(pdf_bytes())
    assert local_get(client, file["file"]["url"]).headers["Content-Disposition"].startswith("attachment;")

    # Exactly what Page.onShareAppMessage returns: {title, path (starting with "/"), imageUrl}.
    article = got["article"]["share_app_message"]
    assert set(article) == {"title", "path", "imageUrl"}
    assert article["path"] == f"/pages/material/detail?id={made['article'].id}"
    assert local_get(client, article["imageUrl"]).mimetype == "image/jpeg"
    link = got["link"]
    assert link["share_app_message"] == {"title": "活动页", "path": f"/pages/material/detail?id={made['link'].id}"}
    assert link["link_url"] == "https://brand.example.com/spring"
    own = got["own card"]
    assert own["share_app_message"]["path"] == "/pages/product/detail?id=12"
    assert own["miniprogram"]["appid"] == app.config["WECHAT_APP_ID"]
    assert set(own["share_app_message"]) == {"title", "path", "imageUrl"}
    other = got["other card"]
    # Another mini-program's page cannot be forwarded directly: the card opens our detail page.
    assert other["share_app_message"]["path"] == f"/pages/material/detail?id={made['other card'].id}"
    assert other["miniprogram"] == {"appid": "wx1234567890abcdef", "path": "/pages/index/index",
                                    "title": "合作小程序卡片", "image_url": other["share_app_message"]["imageUrl"]}

    share(client, w.a_owner, made["image"].id)
    share(client, w.b_owner, made["image"].id)
    rows = db.session.execute(
        select(MaterialShare.dealer_id, func.count()).where(MaterialShare.material_id == made["image"].id)
        .group_by(MaterialShare.dealer_id)
    ).all()
    assert dict(rows) == {w.dealer_a.id: 2, w.dealer_b.id: 1}


# --- campaigns ----------------------------------------------------------------------------------

def test_campaign_attachment_gives_media_bytes_and_card_fields(app, dealers):
    w = dealers
    poster = make_material(w.marketing, "poster", title="海报")
    card = make_material(w.marketing, "miniprogram", title="卡片", mp_path="pages/product/detail?id=12")
    link = make_material(w.marketing, "link", title="链接", summary="春季活动")
    draft = make_material(w.marketing, "image", publish=False)
    expired = make_material(w.marketing, "image", valid_to=business_today() - timedelta(days=1))

    image = campaign_attachment(poster.id)
    assert image.msgtype == "image" and image.media_bytes() == image_bytes()
    assert image.media_content_type == "image/png" and image.media_name.endswith(".png")
    mp = campaign_attachment(card.id)
    assert (mp.msgtype, mp.appid, mp.page, mp.title) == ("miniprogram", app.config["WECHAT_APP_ID"],
                                                         "pages/product/detail.html?id=12", "卡片")
    assert mp.media_bytes()[:3] == b"\xff\xd8\xff" and mp.media_content_type == "image/jpeg"
    lk = campaign_attachment(link.id)
    assert (lk.msgtype, lk.url, lk.desc, lk.picurl) == ("link", "https://brand.example.com/spring", "春季活动", None)
    coverless = make_material(w.marketing, "article", title="无封面图文")
    covered = make_material(w.marketing, "article", title="有封面图文", cover=FileIn(image_bytes(), "c.png"))
    article = campaign_attachment(covered.id)
    assert (article.msgtype, article.page) == ("miniprogram", f"pages/material/detail.html?id={covered.id}")
    assert article.media_bytes()[:3] == b"\xff\xd8\xff"
    for unusable in (draft, expired, coverless):
        with pytest.raises(DomainError) as refused:
            campaign_attachment(unusable.id)
        assert refused.value.code == "material_unusable"
    # On the day a scheduled campaign will go out, not today:
    assert campaign_attachment(expired.id, on=business_today() - timedelta(days=2)).msgtype == "image"


@pytest.mark.postgres
def test_listing_search_chips_and_a_moved_tier_on_postgresql(pg_client, pg_world):
    from app.staff.service import create_staff

    w = pg_world
    marketer = create_staff(username="shi", name="市场", role="marketing", password="correct-horse-9")
    make_material(marketer, "poster", title="金牌春节海报", tags=["春节"], audience={"tiers": ["gold"]})
    make_material(marketer, "link", title="上海活动_100%", tags=["活动"], audience={"regions": ["310000"]})
    make_material(marketer, "article", title="全员春节说明", tags=["春节", "说明"])

    assert sorted(titles(pg_client, w.b_owner)) == ["上海活动_100%", "全员春节说明"]
    assert titles(pg_client, w.b_owner, "?q=100%25") == ["上海活动_100%"]
    assert titles(pg_client, w.b_owner, "?q=_1") == ["上海活动_100%"]
    assert titles(pg_client, w.b_owner, "?tag=春节") == ["全员春节说明"]
    chips = pg_client.get(f"{MP}/materials", headers=auth(w.b_owner)).get_json()["tags"]
    # (ties are ordered by the database's collation, so compare as a set)
    assert {(c["tag"], c["count"]) for c in chips} == {("活动", 1), ("春节", 1), ("说明", 1)} and len(chips) == 3
    w.dealer_b.tier_id = w.gold.id
    db.session.commit()
    assert sorted(titles(pg_client, w.b_owner, "?q=春节")) == ["全员春节说明", "金牌春节海报"]
