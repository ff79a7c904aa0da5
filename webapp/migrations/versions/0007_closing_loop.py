"""tickets: closing question, satisfaction rating; customers: WhatsApp notifications opt-out

Revision ID: a1b2c3d40007
Revises: a1b2c3d40006
Create Date: 2026-12-03 19:10:00

"""
import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = 'a1b2c3d40007'
down_revision = 'a1b2c3d40006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets') as batch_op:
        batch_op.add_column(sa.Column('close_asked_at', webapp.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('rating_asked_at', webapp.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('satisfaction', sa.Integer(), nullable=True))
        batch_op.create_index('ix_tickets_close_asked_at', ['close_asked_at'], unique=False)
    with op.batch_alter_table('customers') as batch_op:
        batch_op.add_column(sa.Column('notify_whatsapp', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('customers') as batch_op:
        batch_op.drop_column('notify_whatsapp')
    with op.batch_alter_table('tickets') as batch_op:
        batch_op.drop_index('ix_tickets_close_asked_at')
        batch_op.drop_column('satisfaction')
        batch_op.drop_column('rating_asked_at')
        batch_op.drop_column('close_asked_at')
