"""stream refusals, quarantine, and when a peer's outage began

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.storage.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('peers') as batch:
        batch.add_column(sa.Column('down_since', node.storage.models.UTCDateTime(timezone=True), nullable=True))
    op.create_table('stream_refusals',
    sa.Column('peer', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retry_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('peer', 'direction', 'origin', 'audience', name=op.f('pk_stream_refusals'))
    )
    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('envelope_id', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('header', sa.LargeBinary(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(), nullable=False),
    sa.Column('found_by', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=False),
    sa.Column('found_at', node.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    op.create_index(op.f('ix_quarantine_origin'), 'quarantine', ['origin'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_quarantine_origin'), table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_table('stream_refusals')
    with op.batch_alter_table('peers') as batch:
        batch.drop_column('down_since')
