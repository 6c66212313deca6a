"""Is this upload really an image we accept? Judged from the bytes, never from the file
name or the Content-Type the client claims.

JPEG, PNG and WebP only: the magic number says which, then Pillow must open the file as
that same format, within the pixel limit, and decode it completely (a truncated or
corrupt file, or one that only starts like an image, is refused).
"""
import io
import warnings

from app.kernel.errors import DomainError

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ACCEPTED_WORDS = "JPG、PNG 或 WebP"


def sniff(data):
    """The format the magic number names ("JPEG", "PNG", "WEBP"), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_image(data, *, max_pixels):
    """(content_type, width, height) of an acceptable image; DomainError 422 otherwise."""
    from PIL import Image

    kind = sniff(data)
    if kind is None:
        raise DomainError("unsupported_file_type", f"只能上传 {ACCEPTED_WORDS} 格式的图片", 422)
    broken = DomainError("invalid_image", "图片文件已损坏或格式不正确，请重新拍照或选择图片", 422)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise DomainError("image_too_large", "图片尺寸过大，请压缩后再上传", 422,
                                      {"width": width, "height": height})
                image.load()
    except DomainError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DomainError("image_too_large", "图片尺寸过大，请压缩后再上传", 422) from None
    except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError...) for bad files
        raise broken from None
    if width < 1 or height < 1:
        raise broken
    return ACCEPTED[kind], width, height
