"""knowledge base articles and their embeddings

Revision ID: a1b2c3d40002
Revises: 17d22cfa6b68
Create Date: 2026-12-03 18:45:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'a1b2c3d40002'
down_revision = '17d22cfa6b68'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
