"""app.storage.files: video and document types judged from the bytes, thumbnails, and
signed download names on the local backend (the image checks are in tests/test_uploads.py)."""
import io
import zipfile

import pytest
from PIL import Image

from app.storage import files, get_storage
from tests.materials_support import docx_bytes, image_bytes, mp4_bytes, pdf_bytes, plain_zip_bytes


def ooxml(main_part, content_type):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", f'<Types><Override PartName="/{main_part}" ContentType="{content_type}"/></Types>')
        archive.writestr(main_part, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize("data,expected", [
    (mp4_bytes(), files.MP4),
    (pdf_bytes(), files.PDF),
    (docx_bytes(), files.DOCX),
    (ooxml("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"), files.XLSX),
    (ooxml("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"),
     files.PPTX),
    # Not accepted: images, a plain zip, a zip claiming Word without its main part, QuickTime, a cut-off ftyp box.
    (image_bytes(), None),
    (plain_zip_bytes(), None),
    (ooxml("word/other.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"), None),
    ((20).to_bytes(4, "big") + b"ftypqt  " + b"\0\0\0\0qt  ", None),
    (mp4_bytes()[:12], None),
    (b"PK\x03\x04 not really a zip", None),
    (b"", None),
])
def test_sniff_file_judges_by_the_bytes(data, expected):
    assert files.sniff_file(data) == expected


def test_thumbnails_are_bounded_jpegs_and_transparency_becomes_white():
    out = io.BytesIO()
    Image.new("RGBA", (1000, 2000), (0, 0, 0, 0)).save(out, format="PNG")
    thumb, width, height = files.make_thumbnail(out.getvalue(), max_side=300)
    assert (width, height) == (150, 300)
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and image.size == (150, 300)
        assert image.getpixel((75, 150)) == (255, 255, 255)
    assert files.make_thumbnail(image_bytes(size=(40, 30)), max_side=300)[1:] == (40, 30)


def test_a_download_name_is_part_of_the_local_signature(app, client):
    storage = get_storage()
    key = storage.put(pdf_bytes(), files.PDF, "materials")
    assert key.endswith(".pdf")
    plain = storage.url_for(key)
    named = storage.url_for(key, download_name="价目表 2027.pdf")
    assert "d=" not in plain and "d=" in named
    got = client.get(named)
    assert got.status_code == 200 and got.mimetype == "application/pdf"
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"___ 2027.pdf\"; filename*=UTF-8''%E4%BB%B7%E7%9B%AE%E8%A1%A8%202027.pdf")
    # The same signature without the name (or with another name) is refused.
    assert client.get(named.split("&d=")[0]).status_code == 404
    assert client.get(named.replace("d=%E4", "d=%E5")).status_code == 404
    assert client.get(plain).headers["Content-Disposition"] == "attachment"  # not an image: never inline
