"""price lists count their versions; order lines record the price list (id, name, version) that priced them

Existing lists start at version 1. Existing order lines keep NULL: which list priced them,
and in which state, was never recorded, and today's lists cannot say it honestly (their
prices, names and dates may have changed since); pages show "下单时未记录" for them.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('price_lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_list_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('price_list_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('price_list_version', sa.Integer(), nullable=True))


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN (SQLite has it since 3.35): a batch would copy and
    # drop both tables, which other tables' foreign keys refuse while they hold rows.
    for column in ('price_list_version', 'price_list_name', 'price_list_id'):
        op.drop_column('order_lines', column)
    op.drop_column('price_lists', 'version')
