"""Files that are not photos: short videos and documents (materials, policy attachments).

Like `app.storage.images`, the type is judged from the bytes, never from the file name or
the Content-Type the client claims. Accepted:

- video: MP4 (an ISO base media file whose first box is `ftyp` with an MP4 brand);
- documents: PDF (`%PDF-`), and Word / Excel / PowerPoint 2007+ (.docx / .xlsx / .pptx:
  a ZIP whose `[Content_Types].xml` and main part say which).

Legacy .doc/.xls/.ppt (OLE2) are refused: the magic number is the same for all three and
for any other OLE2 file, so the bytes cannot say what it is. `make_thumbnail` makes a small
JPEG of an image (for lists and share cards).
"""
import io
import warnings
import zipfile

from app.kernel.errors import DomainError

MP4 = "video/mp4"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# What each accepted type is called, and its extension (also used for storage keys).
FILE_TYPES = {
    MP4: ("MP4 视频", ".mp4"),
    PDF: ("PDF", ".pdf"),
    DOCX: ("Word", ".docx"),
    XLSX: ("Excel", ".xlsx"),
    PPTX: ("PowerPoint", ".pptx"),
}
DOCUMENT_TYPES = (PDF, DOCX, XLSX, PPTX)
DOCUMENT_WORDS = "PDF、Word（.docx）、Excel（.xlsx）或 PowerPoint（.pptx）"

# ISO/IEC 14496-12 major brands that mean "MP4 a mini-program <video> can play". QuickTime
# ("qt  ") and 3GP are left out on purpose.
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V ", b"MSNV"}
_OOXML_MAIN_PARTS = {DOCX: "word/document.xml", XLSX: "xl/workbook.xml", PPTX: "ppt/presentation.xml"}
_OOXML_CONTENT_TYPES = {
    DOCX: b"wordprocessingml.document.main+xml",
    XLSX: b"spreadsheetml.sheet.main+xml",
    PPTX: b"presentationml.presentation.main+xml",
}
# An office file's [Content_Types].xml is a few KB; refuse to inflate a zip bomb to read it.
_MAX_CONTENT_TYPES_BYTES = 256 * 1024


def is_mp4(data):
    """An `ftyp` box first, of a sane size, naming an MP4 brand (major or compatible)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(data[:4], "big")
    if box_size < 16 or box_size > 4096 or box_size > len(data):
        return False
    brands = {data[8:12]} | {data[i:i + 4] for i in range(16, box_size - 3, 4)}
    return bool(brands & _MP4_BRANDS)


def _ooxml_type(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml") if "[Content_Types].xml" in names else None
            if info is None or info.file_size > _MAX_CONTENT_TYPES_BYTES:
                return None
            content_types = archive.read(info)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return None
    for content_type, main_part in _OOXML_MAIN_PARTS.items():
        if main_part in names and _OOXML_CONTENT_TYPES[content_type] in content_types:
            return content_type
    return None


def sniff_file(data):
    """The content type of an accepted video or document, from its bytes; None otherwise."""
    if is_mp4(data):
        return MP4
    if data[:5] == b"%PDF-":
        return PDF
    if data[:4] == b"PK\x03\x04":
        return _ooxml_type(data)
    return None


def inspect_video(data):
    """`video/mp4` for an MP4; DomainError 422 `unsupported_file_type` otherwise."""
    if sniff_file(data) != MP4:
        raise DomainError("unsupported_file_type", "视频只支持 MP4 格式（按文件内容判断）", 422)
    return MP4


def inspect_document(data):
    """The content type of an accepted document; DomainError 422 `unsupported_file_type` otherwise."""
    content_type = sniff_file(data)
    if content_type not in DOCUMENT_TYPES:
        raise DomainError("unsupported_file_type", f"文件只支持 {DOCUMENT_WORDS} 格式（按文件内容判断）", 422)
    return content_type


def size_words(limit):
    """A byte limit as people say it: 10 MB, 512 KB, 1.5 MB."""
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    if limit < 1024 * 1024:
        return f"{max(limit // 1024, 1)} KB"
    return f"{limit / (1024 * 1024):.1f} MB"


def too_large(what, limit):
    return DomainError("file_too_large", f"{what}不能超过 {size_words(limit)}，请压缩后再上传", 413, {"max_bytes": limit})


def make_thumbnail(data, *, max_side, quality=82):
    """A JPEG no larger than `max_side` on either side (never enlarged) of an image already
    checked by `app.storage.images.inspect_image`: (bytes, width, height). Transparent parts
    become white (share cards accept JPEG and PNG; JPEG keeps them small)."""
    from PIL import Image, ImageOps

    from app.storage.images import CleanImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                background = Image.new("RGB", image.size, (255, 255, 255))
                background.paste(image, mask=image.getchannel("A"))
                image = background
            elif image.mode != "RGB":
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality, optimize=True)
            # Made here from pixels alone: storage keeps it as it is (no second encoding).
            thumb = CleanImage(out.getvalue())
            thumb.content_type, thumb.width, thumb.height = "image/jpeg", image.width, image.height
            return thumb, image.width, image.height
