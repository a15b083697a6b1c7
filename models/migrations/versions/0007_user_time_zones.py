"""users: the time zone that decides which budget period is "now"

Revision ID: 0007
Revises: 0006
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("users", sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("users", "timezone")
