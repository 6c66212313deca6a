"""Where uploaded files live: a local directory (the default) or an S3-compatible store.

Both backends speak the same small interface:

    put(data, content_type, prefix) -> key   store bytes under a new, unguessable key
    get(key) -> bytes                        read them back (KeyError if there is no such key)
    url_for(key) -> str                      a URL a browser or the mini-program can load, valid
                                             for STORAGE_URL_TTL_SECONDS; with
                                             `download_name=` the response asks to be saved
                                             as an attachment under that file name
    delete(key)                              remove (no error if already gone)

Every image is stored re-encoded (`app.storage.images.reencode`: pixels only, no metadata,
nothing appended), whoever calls `put`. Whatever is served says what it is and may not be
read as anything else: its content type, `X-Content-Type-Options: nosniff`, a sandboxing
`Content-Security-Policy`, and `Content-Disposition: attachment` unless it is an image
(`serving_headers`). The file route sends them for local files; for S3 the type and the
disposition are stored with the object and signed into every URL (S3 cannot store the
other two: the bucket's CDN or proxy adds them, see docs).

Keys look like `returns/2026/11/3f2a…9c.jpg`: a prefix, the month, 128 random bits and
the extension of the content type. Nobody can guess another dealer's key, and a URL
stops working when it expires, so a URL copied out of the mini-program is not a
permanent link to a dealer's photos.
"""
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import quote

from app.kernel import clock
from app.kernel.clock import utcnow
from app.storage.files import FILE_TYPES
from app.storage.images import IMAGE_TYPES, CleanImage, reencode

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
# Videos and documents (app.storage.files), checked from their bytes like images.
EXTENSIONS.update({content_type: ext for content_type, (_label, ext) in FILE_TYPES.items()})
CONTENT_TYPES = {ext: content_type for content_type, ext in EXTENSIONS.items()}
_PREFIX = re.compile(r"[a-z0-9_-]{1,32}")
# What `put` makes, and the only shape `get`/`delete`/the file route accept: no `..`, no
# absolute paths, nothing outside the storage root.
KEY_PATTERN = re.compile(r"[a-z0-9_-]{1,32}/[0-9]{4}/[0-9]{2}/[0-9a-f]{32}(?:\.[a-z0-9]{1,5})?")


class StorageError(RuntimeError):
    """The store could not be reached or refused the operation."""


def new_key(content_type, prefix):
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"storage prefix {prefix!r} must be 1-32 of a-z 0-9 _ -")
    now = utcnow()
    return f"{prefix}/{now:%Y/%m}/{secrets.token_hex(16)}{EXTENSIONS.get(content_type, '')}"


def check_key(key):
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise KeyError(key)
    return key


def content_type_of(key):
    """The content type a key was stored with (its extension says it)."""
    return CONTENT_TYPES.get(os.path.splitext(key)[1], "application/octet-stream")


def stored_bytes(data, content_type):
    """What `put` stores: an image re-encoded (unless it already is), anything else as it is."""
    if content_type in IMAGE_TYPES and not isinstance(data, CleanImage):
        return reencode(data, content_type=content_type)
    return data


# Sent with every stored file: the browser takes the type as given and runs nothing in it.
SANDBOX_CSP = "default-src 'none'; sandbox"


def disposition_for(content_type, download_name=None):
    """Images are shown inline (the console's <img>, the mini-program's <image>); anything
    else is a download, under `download_name` when there is one."""
    if download_name:
        return content_disposition("attachment", download_name)
    return "inline" if content_type in IMAGE_TYPES else "attachment"


def serving_headers(key, download_name=None):
    """The response headers a stored file is served with."""
    content_type = content_type_of(key)
    return {
        "Content-Type": content_type,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX_CSP,
        "Content-Disposition": disposition_for(content_type, download_name),
    }


def content_disposition(disposition, file_name):
    """`attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback for old
    clients and the real, possibly Chinese, name for the rest."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%;' else "_" for ch in file_name) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


# --- local directory ---------------------------------------------------------------------

class LocalStorage:
    """Files under `root`; served by the app at /files/<key> behind a signed, expiring URL."""

    name = "local"

    def __init__(self, root, *, secret, ttl_seconds, url_builder):
        self.root = Path(root).resolve()
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.ttl_seconds = ttl_seconds
        self._url_builder = url_builder  # (key, expires, signature[, download_name]) -> URL

    def _path(self, key):
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise KeyError(key)
        return path

    def put(self, data, content_type, prefix):
        data = stored_bytes(data, content_type)
        key = new_key(content_type, prefix)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key

    def get(self, key):
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def path_of(self, key):
        """The file behind a key (KeyError if there is none); the file route sends it."""
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        return path

    def delete(self, key):
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    # Signed URLs: HMAC-SHA256 over the key and the expiry time (and the download file name,
    # when there is one, so it cannot be swapped), with SECRET_KEY.
    def signature(self, key, expires, download_name=None):
        message = f"{key}\n{int(expires)}"
        if download_name:
            message += f"\n{download_name}"
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()[:32]

    def url_for(self, key, *, ttl_seconds=None, download_name=None):
        check_key(key)
        expires = int(clock.timestamp()) + (ttl_seconds or self.ttl_seconds)
        if download_name:
            return self._url_builder(key, expires, self.signature(key, expires, download_name), download_name)
        return self._url_builder(key, expires, self.signature(key, expires))

    def verify(self, key, expires, signature, *, now=None, download_name=None):
        """True when the URL's signature is ours and it has not expired yet."""
        try:
            expires = int(expires)
        except (TypeError, ValueError):
            return False
        if expires < (now if now is not None else clock.timestamp()):
            return False
        return hmac.compare_digest(self.signature(key, expires, download_name), signature or "")


# --- S3-compatible object store ----------------------------------------------------------

class S3Storage:
    """Objects in one bucket of an S3-compatible store (AWS S3, MinIO, Aliyun OSS, COS...).

    Objects are private; `url_for` hands out a presigned GET URL that expires. The bucket
    must exist (the app never creates or reconfigures buckets).
    """

    name = "s3"

    def __init__(self, *, bucket, endpoint_url=None, access_key=None, secret_key=None, region=None,
                 addressing_style="auto", ttl_seconds=3600, timeout=10):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.ttl_seconds = ttl_seconds
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": addressing_style},
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _call(self, method, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(kwargs.get("Key")) from None
            raise StorageError(f"S3 {method} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {method} failed: {type(exc).__name__}") from exc

    def put(self, data, content_type, prefix):
        data = stored_bytes(data, content_type)
        key = new_key(content_type, prefix)
        # The object answers with its type and disposition even through a URL signed elsewhere.
        self._call("put_object", Key=key, Body=data, ContentType=content_type,
                   ContentDisposition=disposition_for(content_type))
        return key

    def get(self, key):
        return self._call("get_object", Key=check_key(key))["Body"].read()

    def delete(self, key):
        self._call("delete_object", Key=check_key(key))

    def url_for(self, key, *, ttl_seconds=None, download_name=None):
        check_key(key)
        # The store answers with this type and disposition (the overrides are part of the
        # signature), whatever metadata the object was given.
        headers = serving_headers(key, download_name)
        params = {"Bucket": self.bucket, "Key": key, "ResponseContentType": headers["Content-Type"],
                  "ResponseContentDisposition": headers["Content-Disposition"]}
        return self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds or self.ttl_seconds)
