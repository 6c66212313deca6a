"""Uploaded images are never stored or served as sent: a valid PNG with an HTML/PHP payload
appended, or a JPEG carrying EXIF (a phone's GPS position), comes back re-encoded, pixels
only; what does not decode is refused in Chinese; every stored file is served with
nosniff, a sandboxing CSP, and as an attachment unless it is an image. From outside, over
HTTP: the mini-program upload, the console's product picture and the file route."""
import io
from urllib.parse import urlsplit

import pytest
from PIL import Image, PngImagePlugin

from app.extensions import db
from app.storage.models import Upload
from tests.factories import auth
from tests.helpers import HTML, MP, csrf
from tests.helpers import console_login as login
from tests.test_uploads import post_file, stored_files, upload_count

PAYLOAD = b"<html><body><script>alert(document.cookie)</script><?php system($_GET['c']); ?></body></html>"


@pytest.fixture
def storage_dir(app, tmp_path):
    app.config["STORAGE_DIR"] = str(tmp_path / "uploads")
    app.extensions.pop("dinghuo_storage", None)
    return tmp_path / "uploads"


def payload_png():
    """A real 40×30 PNG (with a text chunk saying PHP) and an HTML/PHP page after its end."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<?php echo 'chunk'; ?>")
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG", pnginfo=info)
    return out.getvalue() + PAYLOAD


def jpeg_with_exif():
    image = Image.new("RGB", (64, 48), (20, 120, 40))
    exif = image.getexif()
    exif[0x010E] = "GPS 31.2304N 121.4737E"  # ImageDescription, standing in for a GPS block
    exif[0x0112] = 6  # taken with the phone turned: shown rotated 90°
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=b"<?php echo 1; ?>")
    return out.getvalue()


def fetch(client, url):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_a_png_with_an_appended_payload_is_served_re_encoded_without_it(client, world, storage_dir):
    data = payload_png()
    Image.open(io.BytesIO(data)).verify()  # the attack: a PNG any decoder accepts
    r = post_file(client, auth(world.a_buyer), data, filename="photo.png", content_type="image/png")
    assert r.status_code == 201, r.json
    got = fetch(client, r.json["url"])
    assert got.status_code == 200
    assert b"<html" not in got.data and b"<?php" not in got.data and b"script" not in got.data
    assert got.data != data and len(got.data) == r.json["size"]
    with Image.open(io.BytesIO(got.data)) as served:
        assert served.format == "PNG" and served.size == (40, 30)
        assert served.getpixel((5, 5)) == (200, 30, 30) and "Comment" not in served.info
    # What is on disk is what is served: the payload was never stored.
    (path,) = stored_files()
    assert path.read_bytes() == got.data
    # And it is served as an image the browser may not reinterpret or run.
    assert got.mimetype == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert "default-src 'none'" in got.headers["Content-Security-Policy"]
    assert got.headers["Content-Disposition"] == "inline"


def test_metadata_is_stripped_and_the_photo_turned_upright(client, world, storage_dir):
    r = post_file(client, auth(world.a_buyer), jpeg_with_exif())
    assert r.status_code == 201, r.json
    assert (r.json["width"], r.json["height"]) == (48, 64)  # the EXIF orientation applied
    got = fetch(client, r.json["url"]).data
    assert b"GPS" not in got and b"<?php" not in got
    with Image.open(io.BytesIO(got)) as served:
        assert served.format == "JPEG" and served.size == (48, 64)
        assert not served.getexif() and "comment" not in served.info and "exif" not in served.info


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + PAYLOAD,  # the magic number and nothing that decodes
    payload_png()[:60],  # a PNG cut short
    PAYLOAD,
])
def test_what_does_not_decode_is_refused_in_chinese_and_nothing_is_stored(client, world, storage_dir, data):
    r = post_file(client, auth(world.a_buyer), data, filename="photo.png", content_type="image/png")
    assert r.status_code == 422
    assert r.json["error"]["code"] in ("invalid_image", "unsupported_file_type")
    assert "图片" in r.json["error"]["message"]
    assert upload_count() == 0 and stored_files() == []


def test_the_console_product_picture_is_re_encoded_too(client, world, staff, storage_dir):
    login(client, "boss")
    path = f"/console/products/{world.cola.id}"
    form = {"image": (io.BytesIO(payload_png()), "cola.png", "image/png"), "csrf_token": csrf(client, path)}
    r = client.post(f"{path}/image", data=form, content_type="multipart/form-data", headers=HTML)
    assert r.status_code == 302, r.get_data(as_text=True)
    image_url = client.get(f"{MP}/products/{world.cola.id}", headers=auth(world.a_buyer)).json["image_url"]
    got = fetch(client, image_url)
    assert got.status_code == 200 and PAYLOAD not in got.data and b"<?php" not in got.data
    assert Image.open(io.BytesIO(got.data)).size == (40, 30)
    assert got.headers["X-Content-Type-Options"] == "nosniff"


def test_a_file_that_is_not_an_image_is_always_a_download(app, client, storage_dir):
    from app.storage import get_storage

    storage = get_storage()
    key = storage.put(b"%PDF-1.4\n" + PAYLOAD, "application/pdf", "materials")
    got = fetch(client, storage.url_for(key).replace("http://localhost", ""))
    assert got.status_code == 200 and got.mimetype == "application/pdf"
    assert got.headers["Content-Disposition"] == "attachment"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_the_upload_row_describes_the_stored_image(client, world, storage_dir):
    import hashlib

    r = post_file(client, auth(world.a_buyer), payload_png(), filename="photo.png", content_type="image/png")
    row = db.session.get(Upload, r.json["id"])
    (path,) = stored_files()
    stored = path.read_bytes()
    assert row.size == len(stored) and row.sha256 == hashlib.sha256(stored).hexdigest()
