"""live updates: the event log that agent pages follow

Revision ID: a1b2c3d40005
Revises: a1b2c3d40004
Create Date: 2026-12-03 18:45:00

"""
import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = 'a1b2c3d40005'
down_revision = 'a1b2c3d40004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'live_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('created_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_live_events_created_at'), 'live_events', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_live_events_created_at'), table_name='live_events')
    op.drop_table('live_events')
