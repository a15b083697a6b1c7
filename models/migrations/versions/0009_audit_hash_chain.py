"""audit: the hash chain per household, the request envelope and retention

Revision ID: 0009
Revises: 0008
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GENESIS = "0" * 64


def upgrade() -> None:
    """Upgrade schema: chain columns (existing records chained in the order they were recorded), chain heads."""
    op.create_table(
        "audit_chains",
        sa.Column("chain_id", sa.String(length=40), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("head_hash", sa.String(length=64), server_default=GENESIS, nullable=False),
        sa.Column("base_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("base_hash", sa.String(length=64), server_default=GENESIS, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("chain_id"),
    )
    op.add_column("audit_events", sa.Column("origin", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("audit_events", sa.Column("chain_id", sa.String(length=40), nullable=True))
    op.add_column("audit_events", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_records()
    for column in ("chain_id", "seq", "prev_hash", "hash"):
        op.alter_column("audit_events", column, nullable=False)
    op.drop_column("audit_events", "note")  # unused, and a field outside the hash would be editable unseen
    op.create_unique_constraint("uq_audit_chain_seq", "audit_events", ["chain_id", "seq"])
    op.create_index("ix_audit_time", "audit_events", ["occurred_at", "event_id"], unique=False)


def _chain_existing_records() -> None:
    """Link the records archived before the chain existed, per household, in the order they were recorded."""
    from domain.audit_chain import chain_of, format_time, linked

    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT event_id, type, version, occurred_at, household_id, user_id, correlation_id, causation_id, payload "
        "FROM audit_events ORDER BY recorded_at, occurred_at, event_id")).mappings().all()
    heads: dict[str, tuple[int, str]] = {}
    for row in rows:
        household = str(row["household_id"]) if row["household_id"] else None
        chain = chain_of(household)
        seq, prev = heads.get(chain, (0, GENESIS))
        record = linked({"chain_id": chain, "event_id": str(row["event_id"]), "type": row["type"],
                         "version": row["version"], "occurred_at": format_time(row["occurred_at"]),
                         "household_id": household, "user_id": str(row["user_id"]) if row["user_id"] else None,
                         "correlation_id": row["correlation_id"], "causation_id": row["causation_id"],
                         "origin": None, "payload": row["payload"]}, seq + 1, prev)
        conn.execute(sa.text("UPDATE audit_events SET chain_id = :c, seq = :s, prev_hash = :p, hash = :h "
                             "WHERE event_id = :e"),
                     {"c": chain, "s": seq + 1, "p": prev, "h": record["hash"], "e": row["event_id"]})
        heads[chain] = (seq + 1, record["hash"])
    for chain, (seq, head) in heads.items():
        conn.execute(sa.text("INSERT INTO audit_chains (chain_id, head_seq, head_hash) VALUES (:c, :s, :h)"),
                     {"c": chain, "s": seq, "h": head})


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_audit_time", table_name="audit_events")
    op.drop_constraint("uq_audit_chain_seq", "audit_events", type_="unique")
    op.add_column("audit_events", sa.Column("note", sa.Text(), nullable=True))
    for column in ("hash", "prev_hash", "seq", "chain_id", "origin"):
        op.drop_column("audit_events", column)
    op.drop_table("audit_chains")
