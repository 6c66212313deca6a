"""The scale run's in-app steps, each in its own process (bench/scale.py starts them with the
same environment as the gunicorn under test, so tokens and cookies are signed with its key):

    python bench/scale_inner.py actors --dealers 8 --out actors.json
    python bench/scale_inner.py statements --month 2026-11      # issue a month's statements
    python bench/scale_inner.py rebates --period 2026Q3          # close a quarter's rebates

`actors`: bearer tokens for bulk dealers spread over the dealer list (their users exist:
`scale-<code>`, bench/scale_load.py), the SKUs each may order (the app's own `list_products`),
and a signed console session cookie for the admin (what a sign-in would have stored).
`statements` / `rebates` print one JSON line with what was done and its time; bench/scale.py
reads the peak memory of this process from the kernel (`wait4`). Statements of the month are
removed first (with their notifications) so every run issues all of them.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PAGE_SIZE = 20
CURSOR_PAGES = 40  # scrolling positions measured per dealer (bench/scale.py, catalogue)


def actors(app, n, out):
    from sqlalchemy import select

    from app.catalog.service import list_products
    from app.dealers.identity import issue_token
    from app.dealers.models import Dealer, DealerUser
    from app.extensions import db
    from app.staff.models import Staff
    from console.auth import _password_mark

    with app.app_context():
        codes = db.session.execute(select(Dealer.code).where(Dealer.code.like("DS%"), Dealer.status == "active")
                                   .order_by(Dealer.code)).scalars().all()
        step = max(1, len(codes) // n)
        chosen = codes[::step][:n]
        result = {"dealers": []}
        for code in chosen:
            dealer = db.session.execute(select(Dealer).where(Dealer.code == code)).scalar_one()
            user = db.session.execute(select(DealerUser).where(DealerUser.openid == "scale-" + code)).scalar_one()
            items, total = list_products(dealer=dealer, page=1, page_size=100)
            skus = [[p["id"], p["moq"]] for p in items if p["stock"]["available"] >= p["moq"]]
            full_pages = max(1, math.floor(total / PAGE_SIZE))
            result["dealers"].append({"code": code, "dealer_id": dealer.id, "user_id": user.id, "token": issue_token(user.openid),
                                      "visible": total, "full_pages": full_pages, "skus": skus,
                                      "cursors": page_cursors(dealer, full_pages)})
        admin = db.session.execute(select(Staff).where(Staff.role == "admin", Staff.active.is_(True))
                                   .order_by(Staff.id)).scalars().first()
        serializer = app.session_interface.get_signing_serializer(app)
        result["cookie"] = (app.config["SESSION_COOKIE_NAME"] + "="
                            + serializer.dumps({"staff_id": admin.id, "pw": _password_mark(admin), "_permanent": True}))
        db.session.rollback()
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)


def page_cursors(dealer, full_pages, spread=CURSOR_PAGES):
    """`after` cursors of up to `spread` pages spread over the whole catalogue (page 1 has
    none), as a dealer scrolling there would hold them: each is the previous page's
    `next_after`, read through the app's own catalogue_page."""
    from app.catalog.service import catalogue_page

    pages = sorted({1 + (k * (full_pages - 1)) // max(spread - 1, 1) for k in range(spread)} - {1})
    cursors = [[1, None]]
    for page in pages:
        previous, _ = catalogue_page(dealer=dealer, page=page - 1, page_size=PAGE_SIZE)
        cursors.append([page, previous.next_after(page - 1, PAGE_SIZE)])
    return cursors


def statements(app, month):
    from sqlalchemy import text

    from app.extensions import db
    from app.statements.service import issue_statements

    with app.app_context():
        ids = "SELECT id FROM statements WHERE month = :m"
        for sql in (f"DELETE FROM outbox WHERE ref_type = 'statement' AND ref_id IN ({ids})",
                    f"DELETE FROM dealer_messages WHERE ref_type = 'statement' AND ref_id IN ({ids})",
                    f"DELETE FROM statement_lines WHERE statement_id IN ({ids})",
                    f"DELETE FROM statement_events WHERE statement_id IN ({ids})",
                    "DELETE FROM statements WHERE month = :m"):
            db.session.execute(text(sql), {"m": month})
        db.session.commit()
        t0 = time.perf_counter()
        result = issue_statements(month=month)
        seconds = time.perf_counter() - t0
        lines = db.session.execute(text("SELECT count(*) FROM statement_lines l JOIN statements s "
                                        "ON s.id = l.statement_id WHERE s.month = :m"), {"m": month}).scalar_one()
        db.session.rollback()
    print(json.dumps({"seconds": seconds, "created": len(result["created"]), "failed": len(result["failed"]),
                      "lines": lines}))


def rebates(app, period):
    from sqlalchemy import text

    from app.extensions import db
    from app.rebates.closing import close_period

    with app.app_context():
        t0 = time.perf_counter()
        result = close_period(period=period)
        seconds = time.perf_counter() - t0
        docs, lines = db.session.execute(text(
            "SELECT count(DISTINCT d.id), count(l.id) FROM rebate_documents d LEFT JOIN rebate_document_lines l "
            "ON l.document_id = d.id WHERE d.period = :p"), {"p": period}).one()
        db.session.rollback()
    print(json.dumps({"seconds": seconds, "rules": result["rules"], "documents": docs, "lines": lines}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("actors")
    a.add_argument("--dealers", type=int, default=8)
    a.add_argument("--out", required=True)
    sub.add_parser("statements").add_argument("--month", required=True)
    sub.add_parser("rebates").add_argument("--period", required=True)
    args = parser.parse_args()
    from app import create_app

    app = create_app()
    if args.what == "actors":
        actors(app, args.dealers, args.out)
    elif args.what == "statements":
        statements(app, args.month)
    else:
        rebates(app, args.period)


if __name__ == "__main__":
    main()
