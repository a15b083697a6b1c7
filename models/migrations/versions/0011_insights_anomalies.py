"""insights: anomalies flagged, and the indexes detection reads by

Revision ID: 0011
Revises: 0010

Written by hand. One row per (transaction, kind) makes every AnomalyDetected event happen once; the index on
transactions (household, category, date) keeps the per-transaction category lookup one index range.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "insights_anomalies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("transaction_id", "kind", name="uq_insights_anomalies_transaction_kind"),
    )
    op.create_index("ix_insights_anomalies_household_date", "insights_anomalies",
                    ["household_id", "occurred_on", "id"])
    op.create_index("ix_transactions_household_category_date", "transactions",
                    ["household_id", "category_id", "occurred_on"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_transactions_household_category_date", table_name="transactions")
    op.drop_index("ix_insights_anomalies_household_date", table_name="insights_anomalies")
    op.drop_table("insights_anomalies")
