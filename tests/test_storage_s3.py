"""The S3 backend against a local S3 stand-in (moto's server mode) over real HTTP on
127.0.0.1: uploads land in the bucket, presigned URLs load them and expire, deletes work,
and an unreachable store answers 503 without writing a row."""
import io

import boto3
import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.storage import S3Storage, get_storage
from app.storage.models import Upload
from tests.conftest import free_port
from tests.factories import auth
from tests.helpers import MP

BUCKET = "dinghuo-test"
CREDENTIALS = {"S3_ACCESS_KEY": "test-access", "S3_SECRET_KEY": "test-secret", "S3_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_app(app, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test-access",
                      aws_secret_access_key="test-secret", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    app.config.update(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=s3_endpoint, S3_BUCKET=BUCKET,
                      S3_ADDRESSING_STYLE="path", **CREDENTIALS)
    app.extensions.pop("dinghuo_storage", None)
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    app.extensions.pop("dinghuo_storage", None)


def jpeg():
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def objects(s3):
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_an_upload_is_stored_in_the_bucket_and_its_presigned_url_loads_it(client, world, s3_app):
    data = jpeg()
    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer),
                    data={"file": (io.BytesIO(data), "x.jpg", "image/jpeg")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    assert isinstance(get_storage(), S3Storage)
    row = db.session.get(Upload, r.json["id"])
    assert objects(s3_app) == [row.storage_key]
    stored = s3_app.get_object(Bucket=BUCKET, Key=row.storage_key)
    assert stored["ContentType"] == "image/jpeg" and Image.open(io.BytesIO(stored["Body"].read())).size == (32, 24)
    # The URL the mini-program gets is a presigned GET to the store itself, over HTTP.
    url = r.json["url"]
    assert url.startswith(s3_app.meta.endpoint_url) and "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    got = requests.get(url, timeout=5)
    assert got.status_code == 200 and got.content == data
    # Without the signature the object is not readable.
    assert requests.get(url.split("?")[0], timeout=5).status_code == 403


def test_the_s3_backend_puts_gets_and_deletes(app, s3_app):
    storage = get_storage()
    key = storage.put(b"%PDF-1.4 ...", "application/pdf", "returns")
    assert key.startswith("returns/") and key.endswith(".pdf")
    assert storage.get(key) == b"%PDF-1.4 ..."
    storage.delete(key)
    with pytest.raises(KeyError):
        storage.get(key)
    assert objects(s3_app) == []


def test_an_unreachable_store_answers_503_and_writes_no_row(client, app, world, s3_app):
    app.config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app.extensions.pop("dinghuo_storage", None)
    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer),
                    data={"file": (io.BytesIO(jpeg()), "x.jpg", "image/jpeg")}, content_type="multipart/form-data")
    assert r.status_code == 503 and r.json["error"]["code"] == "storage_unavailable"
    assert "稍后重试" in r.json["error"]["message"]
    assert db.session.execute(select(func.count()).select_from(Upload)).scalar_one() == 0
    assert objects(s3_app) == []


def test_on_s3_a_payload_png_is_stored_re_encoded_and_served_with_safe_headers(client, world, s3_app):
    from tests.test_upload_security import PAYLOAD, payload_png

    r = client.post(f"{MP}/uploads", headers=auth(world.a_buyer),
                    data={"file": (io.BytesIO(payload_png()), "x.png", "image/png")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    row = db.session.get(Upload, r.json["id"])
    stored = s3_app.get_object(Bucket=BUCKET, Key=row.storage_key)
    # The object's own metadata: its type, shown inline as an image.
    assert stored["ContentType"] == "image/png" and stored["ContentDisposition"] == "inline"
    body = stored["Body"].read()
    assert PAYLOAD not in body and b"<?php" not in body and Image.open(io.BytesIO(body)).size == (40, 30)
    # The presigned URL signs the type and disposition in: the store answers with them.
    got = requests.get(r.json["url"], timeout=5)
    assert got.status_code == 200 and got.content == body
    assert got.headers["Content-Type"] == "image/png" and got.headers["Content-Disposition"] == "inline"
    # Signed into the URL (S3 checks the signature over them; moto does not, so only their
    # presence is asserted here).
    assert "response-content-type=image%2Fpng" in r.json["url"] and "response-content-disposition=inline" in r.json["url"]


def test_on_s3_a_file_that_is_not_an_image_is_an_attachment(app, s3_app):
    storage = get_storage()
    key = storage.put(b"%PDF-1.4\n<html><script>alert(1)</script>", "application/pdf", "materials")
    head = s3_app.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/pdf" and head["ContentDisposition"] == "attachment"
    got = requests.get(storage.url_for(key), timeout=5)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/pdf" and got.headers["Content-Disposition"] == "attachment"
