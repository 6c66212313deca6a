"""Response headers that keep browsers safe, in one place.

HTML pages (the console, error pages, the printable statement) get a Content-Security-Policy:
scripts only from our own /static (no inline script, no eval), nothing may frame them
(`frame-ancestors 'none'`, clickjacking), forms post only to us. Inline `style` stays
allowed: the templates use style attributes, and a style cannot run code. Images and
videos may come from the storage's presigned URLs and from product links staff typed in.

Every response gets `nosniff` and a same-origin referrer policy; over HTTPS (as the trusted
proxy reports it, `TRUSTED_PROXIES`) also HSTS. Files under /files set their own, stricter
policy (`callbacks.files`), which is kept.
"""

CONSOLE_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob: https: http:",
    "media-src 'self' https: http:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000"


def init_app(app):
    from flask import request

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
            headers.setdefault("X-Frame-Options", "DENY")  # browsers that predate frame-ancestors
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
