"""The schema is managed by migrations: one head, and the models match it."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from app.extensions import db


def test_migrations_have_one_head(app):
    config = app.extensions["migrate"].migrate.get_config()
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def _diff():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_models_match_migrations_on_sqlite(app):
    assert _diff() == []


@pytest.mark.postgres
def test_models_match_migrations_on_postgresql(pg_app):
    assert _diff() == []


def test_migrate_is_configured(app):
    assert isinstance(app.extensions["migrate"].migrate, Migrate)
