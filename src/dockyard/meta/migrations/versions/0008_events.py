"""the event outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('repository', sa.String(length=256), nullable=True),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=160), nullable=False),
    sa.Column('remote', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_index('ix_events_pending', 'events', ['dispatched_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_pending', table_name='events')
    op.drop_table('events')
