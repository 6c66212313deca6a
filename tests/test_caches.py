"""The per-process caches: what may be seconds stale, and what never is."""
import pytest
from sqlalchemy import event

from app.cache import TTLCache, app_cache
from app.dealers.models import DealerUser
from app.extensions import db
from app.pricing.models import PriceListItem
from tests.factories import auth, set_stock
from tests.helpers import MP, submit


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def cached(app):
    app.config.update(CATALOGUE_CACHE_SECONDS=5, CALLER_CACHE_SECONDS=5)
    app.extensions.pop("dinghuo_caches", None)
    clock = FakeClock()
    app_cache("catalogue_pages", "CATALOGUE_CACHE_SECONDS").clock = clock
    app_cache("callers", "CALLER_CACHE_SECONDS").clock = clock
    return clock


@pytest.fixture
def pg_cached(pg_app):
    pg_app.config.update(CATALOGUE_CACHE_SECONDS=5, CALLER_CACHE_SECONDS=5)
    pg_app.extensions.pop("dinghuo_caches", None)


def cola(client, user):
    page = client.get(f"{MP}/products", headers=auth(user)).json
    return next(item for item in page["items"] if item["code"] == "SKU-COLA")


def test_cached_catalogue_still_shows_live_stock(client, world, cached):
    assert cola(client, world.a_buyer)["stock"]["available"] == 150
    set_stock(world.cola, world.wh_south, 7)
    set_stock(world.cola, world.wh_east, 0)
    db.session.commit()
    assert cola(client, world.a_buyer)["stock"] == {"available": 7, "level": "low"}


def test_price_changes_show_after_the_ttl_and_checkout_never_waits(client, world, cached):
    clock = cached
    assert cola(client, world.a_buyer)["price_fen"] == 4000
    item = db.session.get(PriceListItem, (db.session.query(PriceListItem.price_list_id)
                                          .filter_by(sku_id=world.cola.id, price_fen=4000).scalar(), world.cola.id))
    item.price_fen = 3900
    db.session.commit()
    assert cola(client, world.a_buyer)["price_fen"] == 4000          # cached page, within 5 s
    order = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).json
    assert order["lines"][0]["unit_price_fen"] == 3900               # checkout re-prices now
    clock.now += 6
    assert cola(client, world.a_buyer)["price_fen"] == 3900


def test_dealers_do_not_share_cached_pages(client, world, cached):
    assert cola(client, world.a_buyer)["price_fen"] == 4000
    assert cola(client, world.b_owner)["price_fen"] == 4500


def test_a_cached_caller_cannot_order_after_suspension_or_demotion(client, world, cached):
    assert client.get(f"{MP}/me", headers=auth(world.a_buyer)).status_code == 200  # caller now cached
    world.dealer_a.status = "suspended"
    db.session.commit()
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.status_code == 403 and r.json["error"]["code"] == "dealer_suspended"
    world.dealer_a.status = "active"
    db.session.get(DealerUser, world.a_buyer.id).role = "viewer"
    db.session.commit()
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_role"


def test_ttl_zero_disables_caching():
    cache = TTLCache(0)
    cache.put("k", 1)
    assert cache.get("k") is None


def test_entries_expire_and_a_full_cache_drops_its_oldest():
    clock = FakeClock()
    cache = TTLCache(5, max_entries=4, clock=clock)
    for i in range(4):
        cache.put(i, i)
    cache.put(4, 4)
    assert cache.get(0) is None and cache.get(4) == 4
    clock.now += 5
    assert cache.get(4) is None


def test_an_order_is_priced_for_the_dealers_current_tier_not_the_cached_one(client, world, cached):
    assert client.get(f"{MP}/me", headers=auth(world.a_owner)).status_code == 200  # caller cached as gold
    world.dealer_a.tier_id = world.silver.id  # silver has no soy price: list price applies
    db.session.commit()
    line = submit(client, auth(world.a_owner), [{"sku_id": world.soy.id, "qty": 1}]).json["lines"][0]
    assert (line["unit_price_fen"], line["price_source"]) == (2599, "list")


def test_a_cached_caller_demoted_to_viewer_cannot_change_anything(client, world, cached):
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.soy.id, "qty": 1}]).json["order_no"]
    db.session.get(DealerUser, world.a_buyer.id).role = "viewer"
    db.session.commit()
    h = auth(world.a_buyer)
    assert client.post(f"{MP}/orders/{order_no}/cancel", headers=h).status_code == 403
    assert client.put(f"{MP}/cart/items/{world.cola.id}", headers=h, json={"qty": 1}).status_code == 403
    address = {"contact_name": "王五", "phone": "13900000000", "region_code": "440100", "detail": "x"}
    assert client.post(f"{MP}/addresses", headers=h, json=address).status_code == 403


@pytest.mark.postgres
def test_cached_catalogue_reads_live_stock_on_postgresql_and_returns_connections_clean(pg_client, pg_world, pg_cached):
    autocommit_at_checkin = []

    def on_checkin(dbapi_connection, _record):
        autocommit_at_checkin.append(dbapi_connection.autocommit)

    event.listen(db.engine, "checkin", on_checkin)
    try:
        assert cola(pg_client, pg_world.a_buyer)["stock"]["available"] == 150  # page now cached
        set_stock(pg_world.cola, pg_world.wh_south, 7)
        set_stock(pg_world.cola, pg_world.wh_east, 0)
        db.session.commit()
        assert cola(pg_client, pg_world.a_buyer)["stock"] == {"available": 7, "level": "low"}
        r = submit(pg_client, auth(pg_world.a_buyer), [{"sku_id": pg_world.cola.id, "qty": 1}])
        assert r.status_code == 201, r.json
        assert cola(pg_client, pg_world.a_buyer)["stock"]["available"] == 6
    finally:
        event.remove(db.engine, "checkin", on_checkin)
    # The live stock read borrows a pooled connection in autocommit; it must go back
    # transactional, or a later write on it would run without a transaction.
    assert autocommit_at_checkin and not any(autocommit_at_checkin)
