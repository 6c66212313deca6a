"""The WeChat/WeCom stand-in as its own process for bench/notify.py.

    python bench/notify_standin.py PORT

Serves the tree under test's stand-in app (devtools.standin; app.integrations.standin
in older trees) with HTTP/1.1 keep-alive (WeChat's and WeCom's
servers keep connections open, and the gateways' requests sessions reuse them; the
stand-in's default HTTP/1.0 opens a TCP connection and a thread per message) and one
bench-only route: GET /_bench/markers counts delivered messages per marker, so the bench
can check that every row arrived exactly once (/_standin/delivered lists only the last 50).
Its own process keeps its CPU apart from the bench driver's.
"""
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import treelayout  # noqa: E402

treelayout.use_app_root()  # $BENCH_APP_ROOT (run.py --against) or this tree

from flask import jsonify  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

standin = treelayout.load("standin")  # devtools.standin (app.integrations.standin before the devtools split)


class KeepAliveHandler(standin._QuietHandler):
    protocol_version = "HTTP/1.1"


def marker(entry):
    body = entry["body"]
    if entry["channel"] == "mp_subscribe":
        return body["data"]["character_string1"]["value"]
    return body["text"]["content"].rsplit("（", 1)[1].rstrip("）")


def main(port):
    app = standin.create_standin_app()
    state = app.extensions["wechat_standin"]

    @app.get("/_bench/markers")
    def markers():
        return jsonify({
            "delivered": collections.Counter(marker(e) for e in state.delivered),
            "dropped": len(state.dropped),
        })

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=KeepAliveHandler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
