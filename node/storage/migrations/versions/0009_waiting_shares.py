"""waiting_shares: shares of own records made before the node held their audience's key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.storage.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('waiting_shares',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=128), nullable=False),
    sa.Column('view', sa.Integer(), nullable=False),
    sa.Column('created_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waiting_shares'))
    )
    op.create_index(op.f('ix_waiting_shares_audience'), 'waiting_shares', ['audience'], unique=False)
    op.create_index('ix_waiting_shares_record_audience', 'waiting_shares', ['record_id', 'audience'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_waiting_shares_record_audience', table_name='waiting_shares')
    op.drop_index(op.f('ix_waiting_shares_audience'), table_name='waiting_shares')
    op.drop_table('waiting_shares')
