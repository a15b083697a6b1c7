"""goals: withdrawals beside contributions, and the reason a contribution was rejected

Revision ID: 0014
Revises: 0013

Written by hand. A withdrawal is a goal_contributions row of kind "withdrawal": its amount stays positive and
the kind gives the direction, so every existing row (a contribution) keeps its meaning and the unique keys
(command id, Idempotency-Key per goal) make a withdrawal happen once like a contribution. A withdrawal the pool
finds larger than what is saved by then is kept as "rejected" with its reason, as is a group contribution from
someone who was no member when the pool got to it.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("goal_contributions", sa.Column("kind", sa.String(length=12), server_default="contribution",
                                                  nullable=False))
    op.create_check_constraint("ck_goal_contributions_kind", "goal_contributions",
                               "kind IN ('contribution', 'withdrawal')")
    for table in ("goal_contributions", "group_contributions"):
        op.add_column(table, sa.Column("reject_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    for table in ("goal_contributions", "group_contributions"):
        op.drop_column(table, "reject_reason")
    op.drop_constraint("ck_goal_contributions_kind", "goal_contributions", type_="check")
    op.drop_column("goal_contributions", "kind")
