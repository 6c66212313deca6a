"""POST /api/mp/v1/uploads: images only (judged from the bytes), size-limited, stored through
the storage interface, owned by the dealer; the local backend serves them at signed, expiring URLs."""
import io
import os
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.kernel import clock as kernel_clock
from app.storage import get_storage
from app.storage.models import Upload
from tests.factories import auth
from tests.helpers import MP


def image_bytes(fmt="PNG", size=(40, 30), color=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def post_file(client, headers, data, filename="photo.jpg", content_type="image/jpeg"):
    return client.post(
        f"{MP}/uploads", headers=headers,
        data={"file": (io.BytesIO(data), filename, content_type)}, content_type="multipart/form-data",
    )


def stored_files():
    root = get_storage().root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload_count():
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Upload)).scalar_one()


@pytest.fixture
def storage_dir(app, tmp_path):
    """A storage directory of this test's own, so 'nothing was stored' can be checked."""
    app.config["STORAGE_DIR"] = str(tmp_path / "uploads")
    app.extensions.pop("dinghuo_storage", None)
    return tmp_path / "uploads"


@pytest.mark.parametrize("fmt,content_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_an_image_upload_answers_id_url_type_and_size(client, world, storage_dir, fmt, content_type):
    data = image_bytes(fmt)
    r = post_file(client, auth(world.a_buyer), data)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["content_type"] == content_type
    assert (body["width"], body["height"]) == (40, 30)
    row = db.session.get(Upload, body["id"])
    assert row.dealer_id == world.dealer_a.id and row.uploaded_by_id == world.a_buyer.id
    # The URL loads the image as stored (re-encoded, same size and format), as the type
    # checked on upload; the size said is the stored one.
    url = urlsplit(body["url"])
    assert body["url"].startswith("http://localhost/files/")
    got = client.get(f"{url.path}?{url.query}")
    assert got.status_code == 200 and body["size"] == len(got.data)
    with Image.open(io.BytesIO(got.data)) as served:
        assert served.format == fmt and served.size == (40, 30)
    assert got.mimetype == content_type
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert len(stored_files()) == 1


def test_the_content_type_comes_from_the_bytes_not_the_name(client, world, storage_dir):
    data = image_bytes("PNG")
    r = post_file(client, auth(world.a_buyer), data, filename="photo.jpg", content_type="image/jpeg")
    assert r.status_code == 201 and r.json["content_type"] == "image/png"
    assert stored_files()[0].suffix == ".png"


FORGERIES = {
    "pdf named jpg": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
    "html named jpg": b"<!doctype html><html><script>alert(document.cookie)</script></html>",
    "svg named jpg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
    "zip": b"PK\x03\x04" + b"\x00" * 60,
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_a_file_that_is_not_an_accepted_image_is_refused_and_nothing_is_stored(client, world, storage_dir, name):
    r = post_file(client, auth(world.a_buyer), FORGERIES[name], filename="photo.jpg", content_type="image/jpeg")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "unsupported_file_type"
    assert "JPG、PNG 或 WebP" in r.json["error"]["message"]
    assert upload_count() == 0 and stored_files() == []


@pytest.mark.parametrize("broken", ["truncated jpeg", "magic then html", "corrupt png"])
def test_a_file_that_only_starts_like_an_image_is_refused(client, world, storage_dir, broken):
    jpeg, png = image_bytes("JPEG", size=(200, 200)), image_bytes("PNG", size=(200, 200))
    data = {
        "truncated jpeg": jpeg[: len(jpeg) // 2],
        "magic then html": b"\xff\xd8\xff\xe0" + b"<html><script>alert(1)</script></html>",
        "corrupt png": png[:40] + b"\x00" * 30 + png[70:],
    }[broken]
    r = post_file(client, auth(world.a_buyer), data)
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_image", r.json
    assert upload_count() == 0 and stored_files() == []


def test_an_empty_file_is_refused(client, world, storage_dir):
    r = post_file(client, auth(world.a_buyer), b"")
    assert r.status_code == 422 and r.json["error"]["code"] == "empty_file"


def test_a_file_over_the_size_limit_is_413_in_chinese(client, app, world, storage_dir):
    app.config["UPLOAD_MAX_BYTES"] = 20_000
    big = image_bytes("PNG", size=(400, 400))
    noise = os.urandom(25_000)  # just over the limit, within the request's multipart allowance
    for data in (big + noise, os.urandom(200_000)):  # ... and far over it (refused before reading)
        r = post_file(client, auth(world.a_buyer), data)
        assert r.status_code == 413, r.status_code
        assert r.json["error"]["code"] == "file_too_large"
        assert "图片不能超过" in r.json["error"]["message"]
    assert upload_count() == 0 and stored_files() == []


def test_the_default_limit_is_5_mb_and_applies_only_to_uploads(client, app, world, storage_dir):
    assert app.config["UPLOAD_MAX_BYTES"] == 5 * 1024 * 1024
    r = post_file(client, auth(world.a_buyer), b"\xff\xd8\xff" + os.urandom(5 * 1024 * 1024))
    assert r.status_code == 413 and r.json["error"]["code"] == "file_too_large"
    assert "5 MB" in r.json["error"]["message"]
    # Other routes keep the small MAX_CONTENT_LENGTH.
    r = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer), data=b"{" + b" " * 2_000_000 + b"}",
                    content_type="application/json")
    assert r.status_code == 413


def test_an_image_with_too_many_pixels_is_refused(client, app, world, storage_dir):
    app.config["UPLOAD_MAX_PIXELS"] = 1_000_000
    r = post_file(client, auth(world.a_buyer), image_bytes("PNG", size=(2000, 1000)))  # compresses to a few KB
    assert r.status_code == 422 and r.json["error"]["code"] == "image_too_large"
    assert upload_count() == 0


def test_only_multipart_with_a_file_field_is_accepted(client, world, storage_dir):
    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer), json={"file": "aGVsbG8="})
    assert r.status_code == 415 and r.json["error"]["code"] == "unsupported_media_type"
    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer), data={"photo": "x"},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["error"]["details"]["fields"]["file"] == ["请选择要上传的图片（字段名 file）"]
    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer), data={"file": "not a file"},
                    content_type="multipart/form-data")
    assert r.status_code == 422
    assert upload_count() == 0


def test_uploading_needs_a_bound_owner_or_buyer(client, world, storage_dir):
    data = image_bytes()
    assert post_file(client, {}, data).status_code == 401
    r = post_file(client, auth(world.a_viewer), data)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_role"
    assert post_file(client, auth(world.a_owner), data).status_code == 201
    assert upload_count() == 1 and len(stored_files()) == 1


def test_when_the_row_cannot_be_written_the_stored_file_is_deleted(client, world, storage_dir, monkeypatch):
    from app.kernel.errors import DomainError
    from app.storage import service

    def refuse(session, user):
        raise DomainError("unauthorized", "账号已停用，请重新登录", 401)

    monkeypatch.setattr(service, "check_may_act", refuse)
    r = post_file(client, auth(world.a_buyer), image_bytes())
    assert r.status_code == 401
    assert upload_count() == 0 and stored_files() == []


# --- signed URLs of the local backend -----------------------------------------------------

def _signed(client, world):
    body = post_file(client, auth(world.a_buyer), image_bytes()).json
    url = urlsplit(body["url"])
    return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}


def test_a_file_url_without_a_valid_signature_is_404(client, world, storage_dir):
    path, params = _signed(client, world)
    assert client.get(path).status_code == 404
    assert client.get(path, query_string={**params, "s": "0" * 32}).status_code == 404
    assert client.get(path, query_string={**params, "e": str(int(params["e"]) + 1)}).status_code == 404
    r = client.get(path, query_string=params)
    assert r.status_code == 200
    # A valid signature is for one key only: it does not open a neighbour's file.
    other = path[:-10] + ("0" * 6) + path[-4:]
    assert client.get(other, query_string=params).status_code == 404


def test_a_file_url_expires(client, app, world, storage_dir, clock):
    path, params = _signed(client, world)
    assert client.get(path, query_string=params).status_code == 200
    clock.advance(seconds=app.config["STORAGE_URL_TTL_SECONDS"] + 1)
    r = client.get(path, query_string=params)
    assert r.status_code == 404 and r.json["error"]["code"] == "file_not_found"


@pytest.mark.parametrize("key", ["../../etc/passwd", "uploads/2026/11/../../../x", "/etc/passwd", "uploads/x.jpg"])
def test_keys_outside_the_storage_shape_are_never_read(client, storage_dir, key):
    storage = get_storage()
    with pytest.raises(KeyError):
        storage.get(key)
    expires = int(kernel_clock.timestamp()) + 60
    r = client.get(f"/files/{key}", query_string={"e": expires, "s": storage.signature(key, expires)},
                   follow_redirects=True)
    assert r.status_code == 404


def test_the_storage_interface_puts_gets_and_deletes(app, storage_dir):
    storage = get_storage()
    key = storage.put(b"%PDF-1.4 ...", "application/pdf", "returns")
    assert key.startswith("returns/") and key.endswith(".pdf")
    assert storage.get(key) == b"%PDF-1.4 ..."
    assert storage.url_for(key).startswith("/files/returns/")  # outside a request: a relative URL
    storage.delete(key)
    with pytest.raises(KeyError):
        storage.get(key)
    storage.delete(key)  # deleting twice is fine


def test_the_openapi_document_describes_the_multipart_upload(client):
    document = client.get(f"{MP}/openapi.json").json
    op = document["paths"][f"{MP}/uploads"]["post"]
    body = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    body = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert body["properties"]["file"]["format"] == "binary" and "file" in body["required"]
    assert "201" in op["responses"] and op["security"] == [{"bearerAuth": []}]
