"""conversations: a clean assistant after an agent hands the conversation back

Revision ID: a1b2c3d40006
Revises: a1b2c3d40005
Create Date: 2026-12-03 19:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a1b2c3d40006'
down_revision = 'a1b2c3d40005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.add_column(sa.Column('assistant_reset_pending', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.drop_column('assistant_reset_pending')
