"""peers: replication progress and backoff per peer

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.storage.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('peers',
    sa.Column('peer_id', sa.String(length=64), nullable=False),
    sa.Column('endpoint', sa.String(length=256), nullable=False),
    sa.Column('last_attempt_at', node.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', node.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', node.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('backoff_seconds', sa.Float(), nullable=False),
    sa.Column('last_error', sa.String(length=512), nullable=False),
    sa.Column('envelopes_sent', sa.BigInteger(), nullable=False),
    sa.Column('envelopes_received', sa.BigInteger(), nullable=False),
    sa.Column('bytes_sent', sa.BigInteger(), nullable=False),
    sa.Column('bytes_received', sa.BigInteger(), nullable=False),
    sa.Column('peer_behind', sa.BigInteger(), nullable=False),
    sa.Column('us_behind', sa.BigInteger(), nullable=False),
    sa.Column('their_vector', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('peer_id', name=op.f('pk_peers'))
    )


def downgrade() -> None:
    op.drop_table('peers')
