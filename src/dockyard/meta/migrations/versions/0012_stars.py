"""stars: users' stars on repositories (docker search's star_count)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repository_stars',
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'],
                            name=op.f('fk_repository_stars_repository_id_repositories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_repository_stars_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repository_id', 'user_id', name=op.f('pk_repository_stars'))
    )
    op.create_index('ix_repository_stars_user', 'repository_stars', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_repository_stars_user', table_name='repository_stars')
    op.drop_table('repository_stars')
