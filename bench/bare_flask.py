"""The Python-side ceiling: a bare Flask app with one route returning a small JSON.

`bench/run.py` serves it with exactly the gunicorn settings it uses for Dinghuo
(`gunicorn -w N -k sync --chdir bench bare_flask:app`) and drives it with the same wrk
settings, so "% of bare Flask" compares like with like on this machine, in this run.
No database, no auth, no marshmallow: what is left is gunicorn + Werkzeug + Flask routing
+ JSON encoding — the floor any Flask endpoint pays per request.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify({"ok": True, "service": "bare-flask", "items": [1, 2, 3]})


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
