"""agent workspace: canned responses, assignment, search

Revision ID: a1b2c3d40003
Revises: a1b2c3d40002
Create Date: 2026-12-03 18:45:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'a1b2c3d40003'
down_revision = 'a1b2c3d40002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
