"""Provider callbacks and file serving: a shell, like the console, the bot and the
mini-program API. Each module is one HTTP entry point that verifies what arrives and calls
one public service.

- `wechatpay.py`: POST /pay/wechat/notify (WeChat Pay payment and refund notifications)
- `kuaidi100.py`: POST /logistics/kuaidi100/notify (Kuaidi100 tracking pushes)
- `files.py`: GET /files/<key> (locally stored uploads behind signed URLs)
"""
from app import storage


def register(app):
    from callbacks.files import bp as files_bp
    from callbacks.files import request_origin
    from callbacks.kuaidi100 import bp as kuaidi100_bp
    from callbacks.wechatpay import bp as wechatpay_bp

    app.register_blueprint(files_bp)
    storage.serve_from(app, request_origin)
    app.register_blueprint(wechatpay_bp)
    app.register_blueprint(kuaidi100_bp)
