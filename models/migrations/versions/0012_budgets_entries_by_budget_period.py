"""budgets: entries indexed by (budget, period), amounts included

Revision ID: 0012
Revises: 0011

Written by hand. What a period spent and what the periods before it spent (rollover) are sums over one budget's
entries of some periods: with (budget_id, period_start) INCLUDE (amount) each is one index range read from the
index alone, where the primary key (budget, transaction) read all of the budget's history and the index on
period_start alone every budget's entries of that period. That index had no other reader: it goes, so writing an
entry maintains as many indexes as before.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_budget_entries_budget_period", "budget_entries", ["budget_id", "period_start"],
                    postgresql_include=["amount"])
    op.drop_index("ix_budget_entries_period_start", table_name="budget_entries")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index("ix_budget_entries_period_start", "budget_entries", ["period_start"])
    op.drop_index("ix_budget_entries_budget_period", table_name="budget_entries")
