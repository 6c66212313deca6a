"""Demo data: a believable food & beverage brand for `flask --app wsgi demo seed`.

The brand (`demo_brand`) is written in one `write_transaction()`, so a failure there leaves
nothing behind, dated at the start of the demo's past (`demo_history`: three months replayed
through the services with the kernel clock at each moment, then last month's statements and
the finished rebate periods, at the present); what happens today (`demo_activity`: orders,
customer groups, materials, policies) goes through the services too; `demo_summary` words
the outcome. The clock is the caller's again when the seed returns.
Data lives in those modules' module-level tables; the functions only turn them into rows.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel import settings
from app.kernel import clock
from app.kernel.clock import business_today, utcnow
from app.kernel.errors import DomainError
from app.kernel.settings import AutoApproval
from devtools.demo_activity import (
    _seed_customer_groups,
    _seed_materials,
    _seed_orders,
    _seed_policies,
    _seed_rebate_rules,
)
from devtools.demo_brand import (
    _log_suspensions,
    _seed_catalogue,
    _seed_console_staff,
    _seed_dealers,
    _seed_invites,
    _seed_price_lists,
    _seed_regions,
    _seed_reps,
    _seed_stock,
    _seed_tiers,
    _seed_visibility,
)
from devtools.demo_history import history_months, history_start, seed_history
from devtools.demo_summary import _summary_lines


# --- seeding ----------------------------------------------------------------------------------------

def seed_demo(*, reset=False) -> dict:
    """Write the demo brand in one transaction; returns `{"lines": [...]}` for the CLI."""
    brand = current_app.config.get("BRAND_NAME") or "鼎禾食品"
    ttl_days = current_app.config["INVITE_TTL_DAYS"]
    today, now = business_today(), utcnow()
    with clock.using(clock.FakeClock(history_start(today))), write_transaction() as session:
        if reset:
            _delete_business_rows(session)
        elif session.execute(select(Dealer.id).limit(1)).first() is not None:
            raise DomainError("demo_exists", "数据库中已有数据；如需重建演示数据请加 --reset", 409)

        seeded = {"regions": _seed_regions(session), "tiers": _seed_tiers(session), "reps": _seed_reps(session)}
        seeded["dealers"] = _seed_dealers(session, seeded["tiers"], seeded["reps"], today)
        seeded["categories"], seeded["skus"] = _seed_catalogue(session)
        seeded["warehouses"] = _seed_stock(session, seeded["skus"])
        seeded["price_lists"] = _seed_price_lists(session, today, seeded["tiers"], seeded["dealers"], seeded["skus"])
        seeded["rules"] = _seed_visibility(session, seeded["categories"], seeded["skus"])
        seeded["invites"] = _seed_invites(session, seeded["dealers"], ttl_days, now)
        seeded["console"] = _seed_console_staff(session, seeded["reps"])
        _log_suspensions(session, seeded["dealers"])
        # Off, so every demo order shows the rep's approval step.
        settings.write(session, settings.AUTO_APPROVAL, AutoApproval(enabled=False))
        lines = _summary_lines(brand, seeded)
    with clock.using(clock.FakeClock(history_start(today) + timedelta(minutes=30))):
        # Valid over the whole past, so its periods can be closed.
        rules = _seed_rebate_rules(history_months(today)[0].replace(month=1, day=1))
    lines += seed_history(today)
    lines += _seed_orders()
    lines += rules
    lines += _seed_customer_groups()
    lines += _seed_policies()
    lines += _seed_materials()
    return {"lines": lines}


def _delete_business_rows(session):
    for table in reversed(db.metadata.sorted_tables):
        if table.name != "alembic_version":
            session.execute(table.delete())
    # Deleted rows may still sit in the identity map, and SQLite reuses their ids.
    session.expunge_all()
