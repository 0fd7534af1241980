"""custody receipts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.storage.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('custody_receipts',
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('held_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('receipt', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('origin', 'audience', 'seq', 'holder', name=op.f('pk_custody_receipts'))
    )


def downgrade() -> None:
    op.drop_table('custody_receipts')
