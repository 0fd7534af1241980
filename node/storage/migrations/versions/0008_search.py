"""search: records in search order (event_month), a record's terms in one index, byte-ordered terms on PostgreSQL, node_meta

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_node_meta'))
    )
    with op.batch_alter_table('records') as batch:
        batch.add_column(sa.Column('event_month', sa.Date(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE records SET event_month = date_trunc('month', event_date)::date")
    else:
        op.execute("UPDATE records SET event_month = date(event_date, 'start of month')")
    with op.batch_alter_table('records') as batch:
        batch.alter_column('event_month', existing_type=sa.Date(), nullable=False)
    op.create_index('ix_records_search_order', 'records', ['event_month', 'record_id', 'origin', 'audience'],
                    unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # The (field, value) index is rebuilt by the type change, now in byte order.
        op.alter_column('record_terms', 'value', type_=sa.String(length=256, collation='C'),
                        existing_type=sa.String(length=256), existing_nullable=False)
    # Each term carries its record's audience: a hub's search seeks only the
    # audiences its caller may read.
    with op.batch_alter_table('record_terms') as batch:
        batch.add_column(sa.Column('audience', sa.String(length=128), nullable=True))
    op.execute("UPDATE record_terms SET audience = (SELECT records.audience FROM records"
               " WHERE records.envelope_id = record_terms.envelope_id)")
    with op.batch_alter_table('record_terms') as batch:
        batch.alter_column('audience', existing_type=sa.String(length=128), nullable=False)
    op.drop_index('ix_record_terms_field_value', table_name='record_terms')
    op.drop_index('ix_record_terms_envelope_id', table_name='record_terms')
    op.create_index('ix_record_terms_field_audience_value', 'record_terms', ['field', 'audience', 'value'],
                    unique=False)
    # A record's own terms, read per record by a search's checks, from the index alone.
    op.create_index('ix_record_terms_envelope_field_value', 'record_terms', ['envelope_id', 'field', 'value'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_record_terms_envelope_field_value', table_name='record_terms')
    op.drop_index('ix_record_terms_field_audience_value', table_name='record_terms')
    op.create_index('ix_record_terms_envelope_id', 'record_terms', ['envelope_id'], unique=False)
    op.create_index('ix_record_terms_field_value', 'record_terms', ['field', 'value'], unique=False)
    with op.batch_alter_table('record_terms') as batch:
        batch.drop_column('audience')
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('record_terms', 'value', type_=sa.String(length=256),
                        existing_type=sa.String(length=256, collation='C'), existing_nullable=False)
    op.drop_index('ix_records_search_order', table_name='records')
    with op.batch_alter_table('records') as batch:
        batch.drop_column('event_month')
    op.drop_table('node_meta')
