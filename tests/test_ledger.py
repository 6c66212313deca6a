"""The ledger: every balance and every balance_after can be re-derived from the entries,
under random movements (SQLite) and under concurrent ones from real threads (PostgreSQL)."""
import random
import threading
from collections import defaultdict

import pytest
from sqlalchemy import select

from app.extensions import db
from app.funds import ledger
from app.funds.ledger import Movement
from app.funds.models import LEDGER_ACCOUNTS, CreditAccount, LedgerEntry
from app.kernel.errors import DomainError
from tests.test_concurrency import make_dealers

ACTOR = ledger.SYSTEM


def random_movement(rng):
    account = rng.choice(LEDGER_ACCOUNTS)
    amount = rng.choice([1, 99, 10_000, 123_456, 5_000_000]) * rng.choice([1, 1, -1])
    return Movement(account, amount, rng.choice(["order", "payment", "adjustment"]), rng.randrange(1, 10**6), "测试")


def apply(dealer_id, movements):
    """Post a batch; False when the ledger refused it (prepaid/rebate would go negative)."""
    try:
        ledger.record_movements(dealer_id=dealer_id, movements=movements, actor=ACTOR, actor_type="system")
        return True
    except DomainError as exc:
        assert exc.code == "insufficient_balance"
        return False


def assert_ledger_replays(dealer_ids):
    """Every entry's balance_after = previous balance_after + amount (from 0), and the
    account row holds the last one; prepaid and rebate never went negative."""
    db.session.expire_all()
    entries = db.session.execute(
        select(LedgerEntry).where(LedgerEntry.dealer_id.in_(dealer_ids)).order_by(LedgerEntry.id)
    ).scalars().all()
    running = defaultdict(int)
    for entry in entries:
        key = (entry.dealer_id, entry.account)
        running[key] += entry.amount_fen
        assert entry.balance_after_fen == running[key], entry.id
        if entry.account in ("prepaid", "rebate"):
            assert entry.balance_after_fen >= 0
    for dealer_id in dealer_ids:
        row = db.session.get(CreditAccount, dealer_id)
        for account in LEDGER_ACCOUNTS:
            assert getattr(row, f"{account}_fen") == running[(dealer_id, account)], (dealer_id, account)
    return entries


def test_thousand_random_movements_replay_from_the_ledger(app, world):
    rng = random.Random(20261126)
    dealers = [world.dealer_a.id, world.dealer_b.id]
    expected = defaultdict(int)
    accepted = 0
    for _ in range(1000):
        dealer_id = rng.choice(dealers)
        batch = [random_movement(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        if apply(dealer_id, batch):
            accepted += 1
            for m in batch:
                expected[(dealer_id, m.account)] += m.amount_fen
    entries = assert_ledger_replays(dealers)
    assert accepted > 300 and len(entries) >= accepted
    for (dealer_id, account), balance in expected.items():
        assert ledger.get_balances(dealer_id)[f"{account}_fen"] == balance


def test_a_refused_batch_writes_nothing(app, world):
    dealer_id = world.dealer_a.id
    apply(dealer_id, [Movement("prepaid", 500, "payment", 1)])
    before = ledger.get_balances(dealer_id)
    count = db.session.query(LedgerEntry).count()
    # The first movement alone would fit; the batch as a whole would not.
    assert not apply(dealer_id, [Movement("receivable", 700, "order", 2), Movement("prepaid", -501, "order", 2)])
    assert ledger.get_balances(dealer_id) == before
    assert db.session.query(LedgerEntry).count() == count


@pytest.mark.parametrize("movement", [
    Movement("cash", 100, "payment"), Movement("prepaid", 0, "payment"), Movement("prepaid", 1.5, "payment"),
    Movement("prepaid", 100, "gift"), Movement("prepaid", 10**14, "payment"),
])
def test_invalid_movements_are_refused(app, world, movement):
    with pytest.raises(DomainError) as caught:
        ledger.record_movements(dealer_id=world.dealer_a.id, movements=[movement], actor=ACTOR, actor_type="system")
    assert caught.value.status == 422
    assert db.session.query(LedgerEntry).count() == 0


def test_entries_record_who_and_why(app, world, staff):
    [entry] = ledger.record_movements(
        dealer_id=world.dealer_a.id, actor=staff["finance"], actor_type="staff",
        movements=[Movement("rebate", 1234, "adjustment", None, "十一月返利")],
    )
    row = db.session.execute(select(LedgerEntry)).scalar_one()
    assert (row.actor_type, row.actor_id, row.actor_name) == ("staff", staff["finance"].id, "财务")
    assert (row.account, row.amount_fen, row.balance_after_fen, row.note) == ("rebate", 1234, 1234, "十一月返利")
    assert entry["balance_after_fen"] == 1234


@pytest.mark.postgres
def test_concurrent_movements_keep_balance_after_continuous(pg_app, pg_world):
    """1,000 movements from 8 threads over 3 dealers (so most collide on a dealer's row)."""
    users = make_dealers(pg_world, 3)
    dealers = [u.dealer_id for u in users]
    rng = random.Random(7)
    plans = [[(rng.choice(dealers), [random_movement(rng)]) for _ in range(125)] for _ in range(8)]
    barrier = threading.Barrier(len(plans))
    errors = []

    def worker(plan):
        with pg_app.app_context():
            barrier.wait()
            try:
                for dealer_id, batch in plan:
                    apply(dealer_id, batch)
            except Exception as exc:  # asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    entries = assert_ledger_replays(dealers)
    assert len(entries) > 300
