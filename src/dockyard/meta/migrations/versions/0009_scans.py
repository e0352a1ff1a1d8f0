"""scans, scan policies and the vulnerability allowlist

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scans',
    sa.Column('digest', sa.String(length=160), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('os_id', sa.String(length=64), nullable=True),
    sa.Column('os_version', sa.String(length=64), nullable=True),
    sa.Column('inventory', sa.LargeBinary(), nullable=True),
    sa.Column('findings', sa.LargeBinary(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('db_id', sa.String(length=64), nullable=True),
    sa.Column('db_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['digest'], ['blobs.digest'], name=op.f('fk_scans_digest_blobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_scans'))
    )
    op.create_index('ix_scans_status', 'scans', ['status'], unique=False)
    op.create_table('scan_policies',
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('scan_on_push', sa.Boolean(), nullable=False),
    sa.Column('block_severity', sa.String(length=16), nullable=True),
    sa.Column('block_unscanned', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], name=op.f('fk_scan_policies_namespace_id_namespaces'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace_id', name=op.f('pk_scan_policies'))
    )
    op.create_table('scan_allowlist',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=True),
    sa.Column('vulnerability', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], name=op.f('fk_scan_allowlist_namespace_id_namespaces'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_allowlist'))
    )
    op.create_index('ix_scan_allowlist_namespace', 'scan_allowlist', ['namespace_id', 'vulnerability'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scan_allowlist_namespace', table_name='scan_allowlist')
    op.drop_table('scan_allowlist')
    op.drop_table('scan_policies')
    op.drop_index('ix_scans_status', table_name='scans')
    op.drop_table('scans')
