"""insights: daily aggregates per household, account, category and currency

Revision ID: 0010
Revises: 0009

Written by hand. Daily rows are recomputed from the transactions (the truth) for the days an event touched;
monthly rows add up the daily ones, so a report over months reads a few hundred rows whatever the history.
The primary keys lead with (household, day|month): every read is one index range.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONEY = sa.Numeric(precision=20, scale=4)


def _table(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("base_amount", MONEY, nullable=False),
        sa.Column("unconverted", sa.Integer(), nullable=False),
        sa.Column("account_amount", MONEY, nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.PrimaryKeyConstraint("household_id", period, "account_id", "category_id", "kind", "currency",
                                "base_currency"),
    )


def upgrade() -> None:
    """Upgrade schema."""
    _table("insights_daily_aggregates", "day")
    _table("insights_monthly_aggregates", "month")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("insights_monthly_aggregates")
    op.drop_table("insights_daily_aggregates")
