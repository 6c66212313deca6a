"""orders: index on created_at for the dashboard

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 22:29:13.317741

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # The dashboard's figures are ranges of created_at (a China-time day, month, 30 days).
    op.create_index('ix_orders_created_at', 'orders', ['created_at'], unique=False)


def downgrade():
    op.drop_index('ix_orders_created_at', table_name='orders')
