"""Development tools beside the product: the local stand-ins for WeChat, WeCom and WeChat Pay
(real HTTP servers that speak the documented APIs) and the demo brand's seed data.

Never imported by production code (app/, bots/, miniprogram_api/, wsgi.py): only by the CLI's
demo commands (`flask --app wsgi demo seed` / `demo serve`, registered when this package is
present) and by tests/ and bench/. devtools may import app; app never imports devtools
(tests/test_layout.py keeps it so).
"""
