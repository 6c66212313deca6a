"""warehouses can be deactivated (the console's warehouse page)

Existing warehouses stay active.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 17:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE ... ADD COLUMN: a batch would copy and drop the table, which the stock
    # rows' foreign keys refuse on SQLite once warehouses hold stock.
    op.add_column('warehouses', sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    op.drop_column('warehouses', 'active')
