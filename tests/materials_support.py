"""Small, real files for the material tests: images from Pillow, an MP4 header, a PDF and
an Office Open XML document built with zipfile."""
import io
import zipfile

from PIL import Image

from app.materials.authoring import create_material, publish_material
from app.materials.files import FileIn


def image_bytes(fmt="PNG", size=(40, 30), color=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def mp4_bytes(extra=b""):
    """An ISO BMFF file as an encoder writes it: an `ftyp` box (major brand isom, compatible
    isom/iso2/avc1/mp41), then a `free` box and an (empty) `mdat`."""
    ftyp = b"ftyp" + b"isom" + (512).to_bytes(4, "big") + b"isomiso2avc1mp41"
    ftyp = (len(ftyp) + 4).to_bytes(4, "big") + ftyp
    return ftyp + (8).to_bytes(4, "big") + b"free" + (8 + len(extra)).to_bytes(4, "big") + b"mdat" + extra


def pdf_bytes():
    return (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def docx_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>'))
        archive.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def plain_zip_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


def make_material(staff, kind="image", *, audience=None, publish=True, tags=(), **values):
    """A material through the service (published unless told otherwise)."""
    values.setdefault("title", f"测试{kind}")
    files = {}
    if kind in ("image", "poster"):
        files["file"] = FileIn(image_bytes(), "pic.png")
    elif kind == "video":
        files["file"] = FileIn(mp4_bytes(), "clip.mp4")
    elif kind == "file":
        files["file"] = FileIn(pdf_bytes(), "价目表.pdf")
    elif kind == "article":
        values.setdefault("body_html", "<p>春节促销</p>")
    elif kind == "link":
        values.setdefault("link_url", "https://brand.example.com/spring")
    elif kind == "miniprogram":
        values.setdefault("mp_path", "pages/product/detail?id=12")
        files["cover"] = FileIn(image_bytes("JPEG", (500, 400)), "cover.jpg")
    files.update({k: values.pop(k) for k in ("file", "cover") if k in values})
    material = create_material(staff=staff, kind=kind, audience={"all": True} if audience is None else audience, tags=list(tags),
                               **files, **values)
    if publish:
        material = publish_material(staff=staff, material_id=material.id)
    return material
