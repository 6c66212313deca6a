"""sales targets: one dealer's ordering target per China business month (the dashboard's attainment)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sales_targets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dealer_id', sa.BigInteger(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_sales_targets_target_positive')),
    sa.ForeignKeyConstraint(['dealer_id'], ['dealers.id'], name=op.f('fk_sales_targets_dealer_id_dealers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_targets')),
    sa.UniqueConstraint('month', 'dealer_id', name=op.f('uq_sales_targets_month_dealer_id'))
    )
    with op.batch_alter_table('sales_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_targets_dealer_id'), ['dealer_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sales_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_targets_dealer_id'))
    op.drop_table('sales_targets')
