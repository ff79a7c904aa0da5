"""agent workspace: canned responses, assignment, search

Revision ID: a1b2c3d40003
Revises: a1b2c3d40002
Create Date: 2026-12-03 18:45:00

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = 'a1b2c3d40003'
down_revision = 'a1b2c3d40002'
branch_labels = None
depends_on = None

# The search index is per dialect (see webapp/models/workspace.py); written out
# here so this revision stays what it was when the models change.
FTS = "ticket_search_fts"
SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5("
    "document, content='ticket_search', content_rowid='ticket_id', "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3', detail='none')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_ai AFTER INSERT ON ticket_search BEGIN "
    f"INSERT INTO {FTS}(rowid, document) VALUES (new.ticket_id, new.document); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_ad AFTER DELETE ON ticket_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, document) VALUES ('delete', old.ticket_id, old.document); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_au AFTER UPDATE ON ticket_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, document) VALUES ('delete', old.ticket_id, old.document); "
    f"INSERT INTO {FTS}(rowid, document) VALUES (new.ticket_id, new.document); END",
)
POSTGRES_DDL = (
    "ALTER TABLE ticket_search ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, document)) STORED",
    "CREATE INDEX IF NOT EXISTS ix_ticket_search_document_fts ON ticket_search USING gin (search_vector)",
)


def upgrade():
    op.create_table('canned_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('title')
    )
    op.create_table('ticket_search',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id')
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_assignee_status_updated', ['assignee_id', 'status', 'updated_at'],
                              unique=False)
        batch_op.create_index('ix_tickets_updated_at_id', ['updated_at', 'id'], unique=False)
        batch_op.create_index('ix_tickets_priority_updated_at', ['priority', 'updated_at'], unique=False)

    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_DDL, "postgresql": POSTGRES_DDL}.get(dialect, ()):
        op.execute(statement)
    _backfill(op.get_bind())


def _normalize(text):
    # As services.ticket_search.normalize: lowercase words and numbers, no accents.
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[^\W_]+", plain))


def _phone_suffixes(phone):
    digits = re.sub(r"\D", "", phone or "")
    return " ".join(digits[i:] for i in range(1, max(1, len(digits) - 7)))


def _backfill(connection):
    """Search documents for the tickets that exist already (the app keeps them
    current from now on; `flask agent reindex-tickets` rebuilds them all)."""
    tickets = connection.execute(sa.text(
        "SELECT t.id, t.subject, t.description, c.name, c.profile_name, c.phone, c.phone_key, c.email "
        "FROM tickets t JOIN customers c ON c.id = t.customer_id")).all()
    for row in tickets:
        parts = [str(v or "") for v in row[1:]] + [_phone_suffixes(row[5]), _phone_suffixes(row[6]),
                                                   _normalize(row[7]).replace(" ", "")]
        parts += [b or "" for (b,) in connection.execute(
            sa.text("SELECT body FROM messages WHERE ticket_id = :t ORDER BY id"), {"t": row[0]})]
        parts += [b or "" for (b,) in connection.execute(
            sa.text("SELECT body FROM ticket_events WHERE ticket_id = :t AND kind = 'note' ORDER BY id"),
            {"t": row[0]})]
        connection.execute(sa.text("INSERT INTO ticket_search (ticket_id, document) VALUES (:t, :d)"),
                           {"t": row[0], "d": _normalize(" ".join(parts))[:20000]})


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_ticket_search_document_fts")
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_priority_updated_at')
        batch_op.drop_index('ix_tickets_updated_at_id')
        batch_op.drop_index('ix_tickets_assignee_status_updated')
    op.drop_table('ticket_search')
    op.drop_table('canned_responses')
