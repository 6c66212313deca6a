"""Bench actors: bound dealer users with bearer tokens, made with the app's own code.

Run inside the project's venv with DATABASE_URL / SECRET_KEY set the same way as the
gunicorn under test (tokens are signed with SECRET_KEY), and BENCH_APP_ROOT naming the
tree under test when it is not this one (bench/treelayout.py finds the app code in either layout):

    python bench/actors.py --dealers 8 --out actors.json

For the first N active dealers (by code: D001, D002, ...) it gets or creates a
`DealerUser(openid="bench-<code>", role="buyer")`, issues a token with
`app.dealers.identity.issue_token`, and lists the SKUs that dealer can see (through
`app.catalog.service.list_products`, i.e. the app's own visibility and price rules).
Users are created one by one, in dealer order, so their ids are consecutive in a fresh
database (bench/order_txn.sql relies on that; run.py checks it).
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import treelayout  # noqa: E402

treelayout.use_app_root()  # $BENCH_APP_ROOT (run.py --against) or this tree

OPENID_PREFIX = "bench-"
PAGE_SIZE = 20


def make_actors(app, n_dealers):
    """[{code, dealer_id, user_id, openid, token, skus: [[id, moq], ...], full_pages}]"""
    from sqlalchemy import select

    list_products = treelayout.load("list_products")
    Dealer, DealerUser = treelayout.load("Dealer"), treelayout.load("DealerUser")
    issue_token = treelayout.load("issue_token")
    db = treelayout.load("db")

    with app.app_context():
        dealers = db.session.execute(
            select(Dealer).where(Dealer.status == "active").order_by(Dealer.code).limit(n_dealers)
        ).scalars().all()
        if len(dealers) < n_dealers:
            raise SystemExit(f"only {len(dealers)} active dealers in the database, {n_dealers} asked for")
        actors = []
        for dealer in dealers:
            openid = OPENID_PREFIX + dealer.code
            user = db.session.execute(select(DealerUser).where(DealerUser.openid == openid)).scalar_one_or_none()
            if user is None:
                user = DealerUser(dealer_id=dealer.id, role="buyer", openid=openid, name=f"压测{dealer.code}")
                db.session.add(user)
                db.session.flush()
            db.session.commit()
            items, total = list_products(dealer=dealer, page=1, page_size=100)
            skus = [[p["id"], p["moq"]] for p in items if p["stock"]["available"] >= p["moq"]]
            actors.append({
                "code": dealer.code,
                "tier": dealer.tier.code,
                "dealer_id": dealer.id,
                "user_id": user.id,
                "openid": openid,
                "token": issue_token(openid),
                "visible": total,
                "full_pages": max(1, math.floor(total / PAGE_SIZE)),
                "skus": skus,
            })
        return actors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dealers", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    actors = make_actors(treelayout.load("create_app")(), args.dealers)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(actors, fh, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
