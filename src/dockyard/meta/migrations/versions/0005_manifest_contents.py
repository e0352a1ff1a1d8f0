"""manifest bytes in the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('manifest_contents',
    sa.Column('digest', sa.String(length=160), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['digest'], ['blobs.digest'], name=op.f('fk_manifest_contents_digest_blobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_manifest_contents'))
    )


def downgrade() -> None:
    op.drop_table('manifest_contents')
