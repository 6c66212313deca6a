"""dealer contract terms: payment terms, contract period, annual target

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 22:17:54.411023

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHECKS = (
    ('ck_dealers_payment_terms_nonnegative', 'payment_terms_days >= 0'),
    ('ck_dealers_annual_target_nonnegative', 'annual_target_fen >= 0'),
    ('ck_dealers_contract_period_ordered', 'contract_end >= contract_start'),
)


def _postgresql():
    # SQLite can only add a CHECK by rebuilding the table, and `dealers` is referenced by
    # most other tables (the rebuild fails their foreign keys); the services validate anyway.
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    with op.batch_alter_table('dealers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_terms_days', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('contract_start', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('contract_end', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('annual_target_fen', sa.BigInteger(), nullable=True))
    if _postgresql():
        for name, condition in CHECKS:
            op.create_check_constraint(op.f(name), 'dealers', condition)


def downgrade():
    if _postgresql():
        for name, _ in reversed(CHECKS):
            op.drop_constraint(op.f(name), 'dealers', type_='check')
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild would fail the foreign keys, as above.
    for column in ('annual_target_fen', 'contract_end', 'contract_start', 'payment_terms_days'):
        op.execute(f'ALTER TABLE dealers DROP COLUMN {column}')
