"""Product pictures: uploaded in the console through the storage interface, shown to dealers in
the mini-program's catalogue and product JSON; checked from the bytes, size-limited, audited."""
import io
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.catalog.models import Sku
from app.extensions import db
from app.storage import get_storage
from tests.factories import auth
from tests.helpers import HTML, MP, csrf
from tests.helpers import console_login as login
from tests.test_uploads import image_bytes, stored_files


@pytest.fixture
def storage_dir(app, tmp_path):
    app.config["STORAGE_DIR"] = str(tmp_path / "files")
    app.extensions.pop("dinghuo_storage", None)
    return tmp_path / "files"


def upload(client, sku, data, *, filename="cola.png", token=True):
    path = f"/console/products/{sku.id}"
    form = {"image": (io.BytesIO(data), filename, "image/png")}
    if token:
        form["csrf_token"] = csrf(client, path)
    return client.post(f"{path}/image", data=form, content_type="multipart/form-data", headers=HTML)


def product_json(client, world, sku):
    return client.get(f"{MP}/products/{sku.id}", headers=auth(world.a_buyer)).json


def listed_image(client, world, sku):
    items = client.get(f"{MP}/products", headers=auth(world.a_buyer), query_string={"page_size": 50}).json["items"]
    return next(item["image_url"] for item in items if item["id"] == sku.id)


def fetch(client, url):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_an_uploaded_picture_reaches_the_mini_program(client, world, staff, storage_dir):
    assert product_json(client, world, world.cola)["image_url"] is None
    login(client, "boss")
    data = image_bytes("PNG", size=(64, 64))
    r = upload(client, world.cola, data)
    assert r.status_code == 302, r.get_data(as_text=True)

    detail_url = product_json(client, world, world.cola)["image_url"]
    assert detail_url.startswith("http://localhost/files/sku/")
    assert fetch(client, detail_url).data == data
    # The catalogue page shows it as well (its cache was dropped by the change).
    assert fetch(client, listed_image(client, world, world.cola)).data == data
    # The console's product page shows it and the change is in the audit log.
    page = client.get(f"/console/products/{world.cola.id}", headers=HTML).get_data(as_text=True)
    assert "上传的图片" in page and "/files/sku/" in page
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "sku.image_upload")).scalar_one()
    assert entry.entity_id == str(world.cola.id) and entry.staff_id == staff["admin"].id


def test_replacing_deletes_the_old_picture_and_removing_falls_back_to_the_link(client, world, staff, storage_dir):
    login(client, "boss")
    upload(client, world.cola, image_bytes("PNG", color=(1, 2, 3)))
    first = db.session.get(Sku, world.cola.id).image_key
    upload(client, world.cola, image_bytes("JPEG", color=(9, 9, 9)), filename="new.jpg")
    db.session.expire_all()
    second = db.session.get(Sku, world.cola.id).image_key
    assert first != second and second.endswith(".jpg")
    assert [p.name for p in stored_files()] == [second.rsplit("/", 1)[1]]

    db.session.get(Sku, world.cola.id).image_url = "/static/cola.png"
    db.session.commit()
    r = client.post(f"/console/products/{world.cola.id}/image",
                    data={"remove": "1", "csrf_token": csrf(client, f"/console/products/{world.cola.id}")}, headers=HTML)
    assert r.status_code == 302
    assert stored_files() == []
    assert product_json(client, world, world.cola)["image_url"] == "http://localhost/static/cola.png"
    actions = db.session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions.count("sku.image_upload") == 2 and actions[-1] == "sku.image_remove"


@pytest.mark.parametrize("data, status, words", [
    (b"%PDF-1.4 not a picture", 422, "只能上传 JPG、PNG 或 WebP 格式的图片"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 422, "图片文件已损坏"),
    (b"", 422, "请选择要上传的图片"),
])
def test_what_is_not_a_picture_is_refused_in_chinese_and_nothing_is_kept(client, world, staff, storage_dir,
                                                                       data, status, words):
    login(client, "boss")
    r = upload(client, world.cola, data, filename="x.png")
    assert r.status_code == status
    assert words in r.get_data(as_text=True)
    assert db.session.get(Sku, world.cola.id).image_key is None
    assert stored_files() == []


def test_a_picture_over_the_limit_is_413(app, client, world, staff, storage_dir):
    app.config["UPLOAD_MAX_BYTES"] = 1024
    login(client, "boss")
    r = upload(client, world.cola, image_bytes("PNG", size=(400, 400)) + b"\0" * 2048)
    assert r.status_code == 413 and "图片不能超过 1 KB" in r.get_data(as_text=True)
    assert stored_files() == []


@pytest.mark.parametrize("username", ["cang", "rep1", "shi", "money"])
def test_only_admins_change_pictures(client, world, staff, storage_dir, username):
    login(client, username)
    token = csrf(client, "/console/") if username != "money" else csrf(client, "/console/orders")
    r = client.post(f"/console/products/{world.cola.id}/image", headers=HTML, content_type="multipart/form-data",
                    data={"csrf_token": token, "image": (io.BytesIO(image_bytes()), "a.png", "image/png")})
    assert r.status_code == 403
    assert stored_files() == []


def test_a_post_without_csrf_is_refused(client, world, staff, storage_dir):
    login(client, "boss")
    assert upload(client, world.cola, image_bytes(), token=False).status_code == 400
    assert stored_files() == []


def test_the_signed_link_does_not_open_other_files(client, world, staff, storage_dir):
    login(client, "boss")
    upload(client, world.cola, image_bytes())
    url = product_json(client, world, world.cola)["image_url"]
    parts = urlsplit(url)
    forged = parts.path.replace("/files/sku/", "/files/uploads/")
    assert client.get(f"{forged}?{parts.query}").status_code in (403, 404)
    assert get_storage().root.exists()
