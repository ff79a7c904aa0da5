"""knowledge base articles and their embeddings

Revision ID: a1b2c3d40002
Revises: 17d22cfa6b68
Create Date: 2026-12-03 18:45:00

"""
import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = 'a1b2c3d40002'
down_revision = '17d22cfa6b68'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'kb_articles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=80), nullable=False),
        sa.Column('language', sa.String(length=5), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('published', sa.Boolean(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.Column('embedding_model', sa.String(length=200), nullable=True),
        sa.Column('content_hash', sa.String(length=64), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('slug', 'language', name='uq_kb_articles_slug_language'),
    )
    op.create_index('ix_kb_articles_language_published', 'kb_articles', ['language', 'published'], unique=False)


def downgrade():
    op.drop_index('ix_kb_articles_language_published', table_name='kb_articles')
    op.drop_table('kb_articles')
