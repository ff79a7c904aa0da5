"""stored media and real-world WhatsApp traffic

Inbound media are downloaded and kept (``media``); emails in the outbox know
their customer, ticket and purpose so the customer can be told on WhatsApp
when one went out or failed for good.

Revision ID: a1b2c3d40004
Revises: a1b2c3d40003
Create Date: 2026-12-03 18:45:00

"""
import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = 'a1b2c3d40004'
down_revision = 'a1b2c3d40003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'media',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('path', sa.String(length=255), nullable=True),
        sa.Column('created_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('fetched_at', webapp.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id', 'position', name='uq_media_message_position'),
    )
    op.create_index('ix_media_message_id', 'media', ['message_id'], unique=False)
    op.create_index('ix_media_queue', 'media', ['status', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('purpose', sa.String(length=30), nullable=True))
        batch_op.create_foreign_key('fk_outbox_customer_id', 'customers', ['customer_id'], ['id'])
        batch_op.create_foreign_key('fk_outbox_ticket_id', 'tickets', ['ticket_id'], ['id'])


def downgrade():
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.drop_constraint('fk_outbox_ticket_id', type_='foreignkey')
        batch_op.drop_constraint('fk_outbox_customer_id', type_='foreignkey')
        batch_op.drop_column('purpose')
        batch_op.drop_column('ticket_id')
        batch_op.drop_column('customer_id')
    op.drop_index('ix_media_queue', table_name='media')
    op.drop_index('ix_media_message_id', table_name='media')
    op.drop_table('media')
