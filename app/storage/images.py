"""Is this upload really an image we accept? Judged from the bytes, never from the file
name or the Content-Type the client claims. And what we store of it: never the bytes as
sent, always the decoded pixels saved afresh (`reencode`).

JPEG, PNG and WebP only: the magic number says which, then Pillow must open the file as
that same format, within the pixel limit, and decode it completely (a truncated or
corrupt file, or one that only starts like an image, is refused).

Re-encoding drops everything that is not pixels: EXIF (with the phone's GPS position),
XMP, comments, text chunks, extra frames and whatever was appended after the image's end
(a PNG followed by HTML or PHP). The stored file is then an image and nothing else, whatever
the browser or a misconfigured server later makes of it.
"""
import contextlib
import io
import warnings

from app.kernel.errors import DomainError

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
IMAGE_TYPES = frozenset(ACCEPTED.values())
ACCEPTED_WORDS = "JPG、PNG 或 WebP"
# What a re-encoded WebP is saved at when the original was lossy (JPEG keeps its own tables).
WEBP_QUALITY = 90


class CleanImage(bytes):
    """Bytes `reencode` produced (with the image's `content_type`, `width` and `height`).
    Storage keeps these as they are; any other image bytes it re-encodes first."""

    content_type: str
    width: int
    height: int


def sniff(data):
    """The format the magic number names ("JPEG", "PNG", "WEBP"), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _broken():
    return DomainError("invalid_image", "图片文件已损坏或格式不正确，请重新拍照或选择图片", 422)


def _too_large(details=None):
    return DomainError("image_too_large", "图片尺寸过大，请压缩后再上传", 422, details)


@contextlib.contextmanager
def _decoded(data, max_pixels):
    """The image, opened as the format its magic number names and fully decoded; every
    failure a DomainError 422 in Chinese."""
    from PIL import Image

    kind = sniff(data)
    if kind is None:
        raise DomainError("unsupported_file_type", f"只能上传 {ACCEPTED_WORDS} 格式的图片", 422)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
                if max_pixels is not None and width * height > max_pixels:
                    raise _too_large({"width": width, "height": height})
                if width < 1 or height < 1:
                    raise _broken()
                image.load()
                yield kind, image
    except DomainError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large() from None
    except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError...) for bad files
        raise _broken() from None


def inspect_image(data, *, max_pixels):
    """(content_type, width, height) of an acceptable image; DomainError 422 otherwise."""
    with _decoded(data, max_pixels) as (kind, image):
        width, height = image.size
    return ACCEPTED[kind], width, height


def reencode(data, *, max_pixels=None, content_type=None):
    """The image decoded and saved again in its own format, with nothing but its pixels:
    a `CleanImage`. Turned upright by its EXIF orientation (the tag goes with the rest of
    the metadata); colours converted to sRGB when it carries a colour profile. Raises what
    `inspect_image` raises, and 422 `unsupported_file_type` when `content_type` is given
    and the bytes are another format."""
    from PIL import ImageOps

    try:
        with _decoded(data, max_pixels) as (kind, source):
            if content_type is not None and ACCEPTED[kind] != content_type:
                raise DomainError("unsupported_file_type", f"只能上传 {ACCEPTED_WORDS} 格式的图片", 422)
            options = _save_options(kind, source, data)
            image = _pixels_only(ImageOps.exif_transpose(source))
            out = io.BytesIO()
            image.save(out, format=kind, **options)
    except DomainError:
        raise
    except Exception:
        raise _broken() from None
    clean = CleanImage(out.getvalue())
    clean.content_type, clean.width, clean.height = ACCEPTED[kind], image.width, image.height
    return clean


def _save_options(kind, source, data):
    if kind == "JPEG":
        from PIL import JpegImagePlugin

        # The original's quantisation tables and chroma subsampling: the same quality, about
        # the same size, no visible second-generation loss.
        options = {"qtables": source.quantization} if getattr(source, "quantization", None) else {"quality": 90}
        sampling = JpegImagePlugin.get_sampling(source)
        if sampling != -1:
            options["subsampling"] = sampling
        return options
    if kind == "WEBP":
        return {"lossless": True} if data[12:16] == b"VP8L" else {"quality": WEBP_QUALITY}
    return {}


def _pixels_only(image):
    """A copy with no metadata: only what the encoder needs to draw the same pixels."""
    icc = image.info.get("icc_profile")
    kept = {k: image.info[k] for k in ("transparency",) if k in image.info}
    if icc:
        image = _to_srgb(image, icc)
    else:
        image = image.copy()
    image.info = kept if image.mode in ("P", "L", "RGB", "LA", "I", "I;16") else {}
    return image


def _to_srgb(image, icc):
    """`image` in sRGB, so dropping its profile does not change how it looks. A profile
    that cannot be read is dropped as it is."""
    from PIL import ImageCms

    try:
        mode = {"CMYK": "RGB", "P": "RGBA", "LA": "RGBA", "I": "L", "I;16": "L"}.get(image.mode, image.mode)
        if image.mode in ("P", "LA"):
            image = image.convert("RGBA")
        return ImageCms.profileToProfile(
            image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode=mode)
    except Exception:
        return image.copy()
