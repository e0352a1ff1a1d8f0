"""many nodes: upload staging state, leases, cluster facts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upload_sessions') as batch:
        # Where the blob store keeps the session's bytes (an S3 multipart upload's parts), as JSON.
        batch.add_column(sa.Column('store_state', sa.Text(), nullable=True))
        # "sha256:<hex>" of the first `offset` bytes, so any node can verify a closing PUT.
        batch.add_column(sa.Column('hashed', sa.String(length=200), nullable=True))
        # A PATCH in progress on some node holds the session until then.
        batch.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('cluster_facts',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cluster_facts'))
    )


def downgrade() -> None:
    op.drop_table('cluster_facts')
    op.drop_table('leases')
    with op.batch_alter_table('upload_sessions') as batch:
        batch.drop_column('claimed_until')
        batch.drop_column('hashed')
        batch.drop_column('store_state')
