"""Materials on the S3 backend (moto's server over real HTTP, as tests/test_storage_s3.py):
the file, the cover and the thumbnail land in the bucket, the presigned URLs load them, a
download URL makes the store answer with the file name, and an unreachable store answers
503 with nothing written."""
import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.kernel.errors import DomainError
from app.materials.files import FileIn
from app.materials.models import Material
from tests.conftest import free_port
from tests.factories import auth
from tests.helpers import MP
from tests.materials_support import image_bytes, make_material, mp4_bytes, pdf_bytes
from tests.test_storage_s3 import BUCKET, objects, s3_app, s3_endpoint  # noqa: F401  (fixtures)


def test_material_files_are_stored_in_the_bucket_and_served_by_presigned_urls(client, world, staff, s3_app):  # noqa: F811
    video = make_material(staff["marketing"], "video", title="短视频", file=FileIn(mp4_bytes(b"v" * 64), "c.mp4"),
                          cover=FileIn(image_bytes("JPEG", (1280, 720)), "poster.jpg"))
    doc = make_material(staff["marketing"], "file", title="价目表", file=FileIn(pdf_bytes(), "价目表.pdf"))
    assert sorted(objects(s3_app)) == sorted([video.file_key, video.cover_key, video.thumb_key, doc.file_key])
    assert s3_app.get_object(Bucket=BUCKET, Key=video.file_key)["ContentType"] == "video/mp4"

    payload = client.post(f"{MP}/materials/{video.id}/share", headers=auth(world.a_buyer)).get_json()["video"]
    assert "X-Amz-Signature=" in payload["url"]
    assert requests.get(payload["url"], timeout=5).content == mp4_bytes(b"v" * 64)
    thumb = requests.get(payload["thumb_url"], timeout=5)
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"

    file = client.get(f"{MP}/materials/{doc.id}", headers=auth(world.a_buyer)).get_json()["file"]
    got = requests.get(file["download_url"], timeout=5)
    assert got.status_code == 200 and got.content == pdf_bytes()
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E4%BB%B7%E7%9B%AE%E8%A1%A8.pdf" in got.headers["Content-Disposition"]
    assert requests.get(file["url"], timeout=5).headers.get("Content-Disposition") == "attachment"  # not an image


def test_an_unreachable_store_answers_503_and_writes_nothing(app, staff, s3_app):  # noqa: F811
    app.config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app.extensions.pop("dinghuo_storage", None)
    with pytest.raises(DomainError) as refused:
        make_material(staff["marketing"], "poster")
    assert (refused.value.status, refused.value.code) == (503, "storage_unavailable")
    assert db.session.execute(select(func.count()).select_from(Material)).scalar_one() == 0
    assert objects(s3_app) == []
