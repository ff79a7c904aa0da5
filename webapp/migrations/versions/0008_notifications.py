"""notifications: WhatsApp templates and fallbacks on the outbox, claims with a lease, early status callbacks

The outbox records the template it sent (Content SID and variables), Twilio's
error code, which notification a row belongs to and which failed row it
stands in for; a claim ('sending') has a start and a lease, and a row whose
last attempt ended in doubt is checked with Twilio before it is sent again.
Status callbacks that arrive before their SID is recorded wait in
``outbox_early_statuses``. The fake Twilio API records what it reports.

Revision ID: a1b2c3d40008
Revises: a1b2c3d40007
Create Date: 2026-12-03 21:00:00

"""
import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = 'a1b2c3d40008'
down_revision = 'a1b2c3d40007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.add_column(sa.Column('claimed_at', webapp.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('needs_check', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('content_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('content_variables', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('error_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('notify_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('fallback_for_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_outbox_notify_key', ['notify_key'], unique=False)
        batch_op.create_unique_constraint('uq_outbox_fallback_for_id', ['fallback_for_id'])
        batch_op.create_foreign_key('fk_outbox_fallback_for_id', 'outbox', ['fallback_for_id'], ['id'])
    op.create_table(
        'outbox_early_statuses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error_code', sa.String(length=16), nullable=True),
        sa.Column('received_at', webapp.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outbox_early_statuses_provider_id', 'outbox_early_statuses', ['provider_id'], unique=False)
    with op.batch_alter_table('dev_simulated_messages') as batch_op:
        batch_op.add_column(sa.Column('content_variables', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='sent'))
        batch_op.add_column(sa.Column('error_code', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('dev_simulated_messages') as batch_op:
        batch_op.drop_column('error_code')
        batch_op.drop_column('status')
        batch_op.drop_column('content_variables')
    op.drop_index('ix_outbox_early_statuses_provider_id', table_name='outbox_early_statuses')
    op.drop_table('outbox_early_statuses')
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.drop_constraint('fk_outbox_fallback_for_id', type_='foreignkey')
        batch_op.drop_constraint('uq_outbox_fallback_for_id', type_='unique')
        batch_op.drop_index('ix_outbox_notify_key')
        batch_op.drop_column('fallback_for_id')
        batch_op.drop_column('notify_key')
        batch_op.drop_column('error_code')
        batch_op.drop_column('content_variables')
        batch_op.drop_column('content_sid')
        batch_op.drop_column('needs_check')
        batch_op.drop_column('claimed_at')
