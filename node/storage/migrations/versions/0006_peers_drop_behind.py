"""peers: drop peer_behind and us_behind (no round ever set them; `gcn sync
status` computes both from the vectors)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('peers') as batch:
        batch.drop_column('us_behind')
        batch.drop_column('peer_behind')


def downgrade() -> None:
    with op.batch_alter_table('peers') as batch:
        batch.add_column(sa.Column('peer_behind', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('us_behind', sa.BigInteger(), nullable=False, server_default='0'))
