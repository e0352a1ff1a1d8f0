"""automated builds: a build configuration per repository, builds, their logs, and the provider
webhook deliveries already seen (replays)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('build_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('ssh_key', sa.Text(), nullable=True),
    sa.Column('webhook_secret', sa.Text(), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('auto_build', sa.Boolean(), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=True),
    sa.Column('cancel_superseded', sa.Boolean(), nullable=False),
    sa.Column('poll_interval_seconds', sa.Integer(), nullable=True),
    sa.Column('poll_state', sa.Text(), nullable=True),
    sa.Column('polled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], name=op.f('fk_build_configs_namespace_id_namespaces'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_build_configs')),
    sa.UniqueConstraint('repository', name=op.f('uq_build_configs_repository'))
    )
    op.create_table('builds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('rule', sa.Integer(), nullable=True),
    sa.Column('ref', sa.String(length=400), nullable=False),
    sa.Column('revision', sa.String(length=64), nullable=True),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('triggered_by', sa.String(length=160), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('digest', sa.String(length=160), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('log_size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], name=op.f('fk_builds_namespace_id_namespaces'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_builds'))
    )
    op.create_index('ix_builds_repository', 'builds', ['repository', 'id'], unique=False)
    op.create_index('ix_builds_status', 'builds', ['status'], unique=False)
    op.create_table('build_log_chunks',
    sa.Column('build_id', sa.BigInteger(), nullable=False),
    sa.Column('start', sa.BigInteger(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['build_id'], ['builds.id'], name=op.f('fk_build_log_chunks_build_id_builds'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('build_id', 'start', name=op.f('pk_build_log_chunks'))
    )
    op.create_table('build_hook_deliveries',
    sa.Column('config_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['config_id'], ['build_configs.id'],
                            name=op.f('fk_build_hook_deliveries_config_id_build_configs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('config_id', 'delivery_id', name=op.f('pk_build_hook_deliveries'))
    )
    op.create_index('ix_build_hook_deliveries_received', 'build_hook_deliveries', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_build_hook_deliveries_received', table_name='build_hook_deliveries')
    op.drop_table('build_hook_deliveries')
    op.drop_table('build_log_chunks')
    op.drop_index('ix_builds_status', table_name='builds')
    op.drop_index('ix_builds_repository', table_name='builds')
    op.drop_table('builds')
    op.drop_table('build_configs')
