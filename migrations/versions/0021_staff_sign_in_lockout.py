"""staff sign-in lockout: consecutive wrong passwords and the lock's end

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 11:25:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN: `staff` is referenced by many tables, a batch rebuild on SQLite would
    # trip their foreign keys.
    op.add_column('staff', sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
    op.add_column('staff', sa.Column('last_failed_login_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('staff', sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    for column in ('locked_until', 'last_failed_login_at', 'failed_logins'):
        op.execute(f'ALTER TABLE staff DROP COLUMN {column}')
