"""Console: the material library. Who may open and change it, CSRF, uploads checked by their
bytes and size per kind (nothing stored on refusal), thumbnails of bounded size, search and
filters, publish / withdraw, the audit trail, and share counts per material and dealer."""
import io
import random
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.audience import service as audience
from app.audit.models import AuditEntry
from app.extensions import db
from app.materials.models import Material, MaterialTag
from app.materials.files import FileIn
from app.kernel.clock import business_today
from app.storage import get_storage
from tests.factories import auth
from tests.helpers import HTML, MP, csrf
from tests.helpers import console_login as login
from tests.materials_support import docx_bytes, image_bytes, make_material, mp4_bytes, pdf_bytes, plain_zip_bytes

NEW = "/console/materials/new"


@pytest.fixture
def storage_dir(app, tmp_path):
    app.config["STORAGE_DIR"] = str(tmp_path / "files")
    app.extensions.pop("dinghuo_storage", None)
    return tmp_path / "files"


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def count(model):
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def actions():
    db.session.expire_all()
    return [e.action for e in db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def create(client, kind, fields=None, files=None, token=True):
    data = {"title": "春节海报", "audience_all": "1", **(fields or {})}
    if token:
        data["csrf_token"] = csrf(client, f"{NEW}?kind={kind}")
    for name, (content, filename) in (files or {}).items():
        data[name] = (io.BytesIO(content), filename)
    return client.post(f"{NEW}?kind={kind}", data=data, headers=HTML, content_type="multipart/form-data")


def only_material():
    db.session.expire_all()
    return db.session.execute(select(Material)).scalar_one()


# --- roles and CSRF ---------------------------------------------------------------------

@pytest.mark.parametrize("who", ["finance", "warehouse"])
def test_finance_and_warehouse_get_403(client, staff, who):
    material = make_material(staff["marketing"])
    login(client, staff[who].username)
    for path in ("/console/materials", NEW, f"/console/materials/{material.id}"):
        assert client.get(path, headers=HTML).status_code == 403, path
    assert "营销素材" not in client.get("/console/", headers=HTML).get_data(as_text=True)


def test_sales_reads_but_cannot_change_anything(client, staff, storage_dir):
    material = make_material(staff["marketing"], title="只读看看")
    login(client, staff["rep"].username)
    listing = client.get("/console/materials", headers=HTML)
    assert listing.status_code == 200 and "只读看看" in listing.get_data(as_text=True)
    assert "上传 / 新建素材" not in listing.get_data(as_text=True)
    detail = client.get(f"/console/materials/{material.id}", headers=HTML).get_data(as_text=True)
    assert "只读看看" in detail and "撤回</button>" not in detail
    token = csrf(client, "/console/materials")
    assert client.get(NEW, headers=HTML).status_code == 403
    for path in (f"{NEW}?kind=link", f"/console/materials/{material.id}", f"/console/materials/{material.id}/withdraw"):
        r = client.post(path, data={"csrf_token": token, "title": "改了", "audience_all": "1",
                                    "link_url": "https://x.example.com"}, headers=HTML)
        assert r.status_code == 403, path
    assert only_material().title == "只读看看" and only_material().status == "published"


@pytest.mark.parametrize("who", ["admin", "marketing"])
def test_admin_and_marketing_manage(client, staff, storage_dir, who):
    login(client, staff[who].username)
    assert client.get("/console/materials", headers=HTML).status_code == 200
    r = create(client, "link", {"link_url": "https://brand.example.com/a"})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    assert only_material().created_by_id == staff[who].id


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(client, staff, storage_dir):
    login(client, staff["marketing"].username)
    r = create(client, "image", files={"file": (image_bytes(), "a.png")}, token=False)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert count(Material) == 0 and stored_files(storage_dir) == []
    material = make_material(staff["marketing"], publish=False)
    for path in (f"/console/materials/{material.id}/publish", f"/console/materials/{material.id}"):
        assert client.post(path, data={"title": "x"}, headers=HTML).status_code == 400
    assert only_material().status == "draft"


# --- uploads: type from the bytes, size per kind, thumbnails ---------------------------------

def test_an_image_upload_stores_the_file_and_a_bounded_thumbnail(client, staff, storage_dir, app):
    login(client, staff["marketing"].username)
    big = image_bytes("PNG", size=(2000, 1000))
    r = create(client, "poster", {"tags": "春节，促销 春节"}, files={"file": (big, "海报.png")})
    assert r.status_code == 302
    material = only_material()
    assert (material.kind, material.status, material.tags) == ("poster", "draft", ["促销", "春节"])
    assert (material.width, material.height, material.file_size) == (2000, 1000, len(big))
    storage = get_storage()
    assert storage.get(material.file_key) == big
    with Image.open(io.BytesIO(storage.get(material.thumb_key))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (480, 240)
    assert (material.thumb_width, material.thumb_height) == (480, 240)
    assert len(stored_files(storage_dir)) == 2
    # A small picture is never enlarged.
    make_material(staff["marketing"], file=FileIn(image_bytes("PNG", (40, 30)), "s.png"))
    db.session.expire_all()
    small = db.session.execute(select(Material).order_by(Material.id.desc())).scalars().first()
    assert (small.thumb_width, small.thumb_height) == (40, 30)


@pytest.mark.parametrize("kind,name,content,code", [
    ("video", "renamed.mp4", image_bytes(), "unsupported_file_type"),     # a PNG named .mp4
    ("image", "clip.png", mp4_bytes(), "unsupported_file_type"),          # an MP4 named .png
    ("file", "notes.docx", plain_zip_bytes(), "unsupported_file_type"),   # a zip that is no office file
    ("file", "old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "unsupported_file_type"),  # legacy OLE2
    ("file", "page.pdf", b"<html><script>alert(1)</script></html>", "unsupported_file_type"),
    ("image", "broken.jpg", image_bytes("JPEG")[:200], "invalid_image"),
    ("image", "empty.png", b"", None),
])
def test_files_that_are_not_what_the_kind_accepts_are_refused_and_nothing_is_stored(
        client, staff, storage_dir, kind, name, content, code):
    login(client, staff["marketing"].username)
    r = create(client, kind, files={"file": (content, name)})
    if code is None:
        assert r.status_code == 422 and "图片文件是空的" in r.get_data(as_text=True)
    else:
        assert r.status_code == 422, r.status_code
        page = r.get_data(as_text=True)
        assert re.search(r"只支持|格式|已损坏", page), page[:500]
        assert 'value="春节海报"' in page  # the form comes back as typed
    assert count(Material) == 0 and stored_files(storage_dir) == []


def test_accepted_videos_and_documents(client, staff, storage_dir):
    login(client, staff["marketing"].username)
    assert create(client, "video", {"title": "视频"}, files={"file": (mp4_bytes(b"x" * 100), "a.mov")}).status_code == 302
    assert create(client, "file", {"title": "PDF"}, files={"file": (pdf_bytes(), "a.pdf")}).status_code == 302
    assert create(client, "file", {"title": "Word"}, files={"file": (docx_bytes(), "说明.docx")}).status_code == 302
    db.session.expire_all()
    got = {m.title: (m.file_content_type, m.file_name, m.thumb_key)
           for m in db.session.execute(select(Material)).scalars()}
    assert got["视频"] == ("video/mp4", "a.mp4", None)  # no poster uploaded: no thumbnail
    assert got["PDF"][:2] == ("application/pdf", "a.pdf")
    assert got["Word"][:2] == ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "说明.docx")


def test_over_the_limit_answers_413_with_the_limit_in_words(client, staff, storage_dir, app):
    app.config.update(MATERIAL_IMAGE_MAX_BYTES=64 * 1024, MATERIAL_VIDEO_MAX_BYTES=128 * 1024)
    login(client, staff["marketing"].username)
    noisy = Image.frombytes("RGB", (300, 300), random.Random(6).randbytes(300 * 300 * 3))  # noise does not compress
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert len(out.getvalue()) > 64 * 1024
    r = create(client, "image", files={"file": (out.getvalue(), "big.png")})
    assert r.status_code == 413 and "图片不能超过 64 KB" in r.get_data(as_text=True)
    r = create(client, "video", files={"file": (mp4_bytes(b"\0" * (130 * 1024)), "big.mp4")})
    assert r.status_code == 413 and "视频不能超过 128 KB" in r.get_data(as_text=True)
    # Beyond anything the page takes, the request itself is refused before it is read.
    r = create(client, "video", files={"file": (mp4_bytes(b"\0" * (600 * 1024)), "huge.mp4")})
    assert r.status_code == 413
    assert count(Material) == 0 and stored_files(storage_dir) == []


def test_a_miniprogram_card_needs_a_cover_and_a_page_path(client, staff, storage_dir):
    login(client, staff["marketing"].username)
    r = create(client, "miniprogram", {"mp_path": "pages/index/index"})
    assert r.status_code == 422 and "封面图" in r.get_data(as_text=True)
    r = create(client, "miniprogram", {"mp_path": "javascript:alert(1)"}, files={"cover": (image_bytes(), "c.png")})
    assert r.status_code == 422 and "页面路径" in r.get_data(as_text=True)
    r = create(client, "miniprogram", {"mp_path": "pages/index/index", "mp_appid": "not-an-appid"},
               files={"cover": (image_bytes(), "c.png")})
    assert r.status_code == 422 and "AppID" in r.get_data(as_text=True)
    assert count(Material) == 0 and stored_files(storage_dir) == []
    r = create(client, "miniprogram", {"mp_path": "/pages/index/index?from=card"}, files={"cover": (image_bytes(), "c.png")})
    assert r.status_code == 302
    assert only_material().mp_path == "pages/index/index?from=card"


# --- edit, publish, withdraw, audit -----------------------------------------------------------

def test_edit_replaces_the_file_and_audience_and_the_audit_log_follows(client, staff, storage_dir, world):
    login(client, staff["marketing"].username)
    create(client, "image", {"tags": "旧"}, files={"file": (image_bytes(), "a.png")})
    material = only_material()
    old_keys = {material.file_key, material.thumb_key}
    path = f"/console/materials/{material.id}"
    token = csrf(client, path)
    r = client.post(path, data={
        "csrf_token": token, "title": "春节海报（新版）", "tags": "新 春节", "audience_tiers": ["gold"],
        "audience_regions": ["440000"], "audience_dealers": "DB01",
        "file": (io.BytesIO(image_bytes("JPEG", (800, 600))), "b.jpg"),
    }, headers=HTML, content_type="multipart/form-data")
    assert r.status_code == 302
    material = only_material()
    assert material.title == "春节海报（新版）" and material.tags == ["新", "春节"]
    assert material.file_content_type == "image/jpeg" and (material.width, material.height) == (800, 600)
    assert audience.load("material", material.id) == audience.Audience(tiers=("gold",), regions=("440000",),
                                                                       dealers=("DB01",))
    # The replaced files are gone; only the new file and thumbnail remain.
    assert {p.relative_to(storage_dir).as_posix() for p in stored_files(storage_dir)} == {
        material.file_key, material.thumb_key}
    assert not old_keys & {material.file_key, material.thumb_key}
    assert client.post(f"{path}/publish", data={"csrf_token": token}, headers=HTML).status_code == 302
    again = client.post(f"{path}/publish", data={"csrf_token": token}, headers=HTML, follow_redirects=True)
    assert "不能再次发布" in again.get_data(as_text=True)
    assert client.post(f"{path}/withdraw", data={"csrf_token": token}, headers=HTML).status_code == 302
    assert only_material().status == "withdrawn"
    assert actions() == ["material.create", "material.update", "material.publish", "material.withdraw"]
    update = db.session.execute(select(AuditEntry).where(AuditEntry.action == "material.update")).scalar_one()
    assert update.before["title"] == "春节海报" and update.after["title"] == "春节海报（新版）"
    assert update.before["audience"] == "全部经销商" and "金牌" in update.after["audience"]
    # The audit page reads it in Chinese.
    login(client, staff["admin"].username)
    page = client.get("/console/audit", headers=HTML).get_data(as_text=True)
    assert "修改素材" in page and "撤回素材" in page


def test_a_refused_edit_changes_nothing(client, staff, storage_dir):
    material = make_material(staff["marketing"], title="原标题", tags=["原"])
    before = stored_files(storage_dir)
    login(client, staff["marketing"].username)
    path = f"/console/materials/{material.id}"
    r = client.post(path, data={"csrf_token": csrf(client, path), "title": "新标题", "tags": "新",
                                "audience_tiers": ["nope"], "file": (io.BytesIO(image_bytes()), "x.png")},
                    headers=HTML, content_type="multipart/form-data")
    assert r.status_code == 422 and "等级不存在：nope" in r.get_data(as_text=True)
    material = only_material()
    assert (material.title, material.tags) == ("原标题", ["原"])
    assert stored_files(storage_dir) == before and actions() == ["material.create", "material.publish"]


# --- listing, search, filters, share counts ----------------------------------------------------

def test_listing_searches_by_title_or_tag_and_filters(client, staff):
    m = staff["marketing"]
    make_material(m, "poster", title="春节海报", tags=["春节"])
    make_material(m, "link", title="品牌故事", tags=["品牌"], publish=False)
    make_material(m, "article", title="新品介绍", tags=["新品", "春节"],
                  valid_from=business_today() + timedelta(days=3))
    login(client, m.username)

    def listed(**query):
        r = client.get("/console/materials", query_string=query, headers=HTML)
        assert r.status_code == 200
        return sorted(re.findall(r"<td>(春节海报|品牌故事|新品介绍)</td>", r.get_data(as_text=True)))

    assert listed() == ["品牌故事", "新品介绍", "春节海报"]
    assert listed(q="春节") == ["新品介绍", "春节海报"]
    assert listed(q="故事") == ["品牌故事"]
    assert listed(tag="新品") == ["新品介绍"]
    assert listed(kind="poster") == ["春节海报"]
    assert listed(status="draft") == ["品牌故事"]
    assert listed(validity="upcoming") == ["新品介绍"]
    assert listed(validity="current") == ["品牌故事", "春节海报"]
    assert listed(validity="expired") == []
    assert client.get("/console/materials?validity=soon", headers=HTML).status_code == 400
    assert client.get("/console/materials?kind=nope", headers=HTML).status_code == 400
    assert client.get("/console/materials?page=0", headers=HTML).status_code == 400


def test_share_counts_per_material_and_dealer_match_the_rows(client, staff, world):
    material = make_material(staff["marketing"], title="可转发")
    for user, times in ((world.a_buyer, 2), (world.a_owner, 1), (world.b_owner, 1)):
        for _ in range(times):
            assert client.post(f"{MP}/materials/{material.id}/share", headers=auth(user)).status_code == 200
    login(client, staff["marketing"].username)
    detail = client.get(f"/console/materials/{material.id}", headers=HTML).get_data(as_text=True)
    assert "经销商转发（4 次，2 家）" in detail
    assert re.search(r"<td>DA01</td><td>[^<]+</td><td>3</td>", detail)
    assert re.search(r"<td>DB01</td><td>[^<]+</td><td>1</td>", detail)
    listing = client.get("/console/materials", headers=HTML).get_data(as_text=True)
    assert re.search(r"<td>全部经销商</td>\s*<td>4</td>", listing)
    assert count(MaterialTag) == 0


def test_when_the_rows_cannot_be_written_the_stored_files_are_deleted_again(app, staff, storage_dir, monkeypatch):
    from app.materials import authoring

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(authoring.audit, "record", broken)
    with pytest.raises(RuntimeError):
        make_material(staff["marketing"], "video", cover=FileIn(image_bytes(), "c.png"))
    assert count(Material) == 0 and stored_files(storage_dir) == []
