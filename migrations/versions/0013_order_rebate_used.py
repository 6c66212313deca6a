"""orders: rebate used as part-payment (rebate_fen)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 01:20:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # What the dealer's rebate balance paid of the order at submission (returned on cancel/reject).
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('rebate_fen', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('rebate_fen')
