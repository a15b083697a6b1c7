"""identity: the devices each user has signed in from

Revision ID: 0013
Revises: 0012

Written by hand. A sign-in is announced (email, SMS, inbox, webhook) only from a device not in this table. A device
is a hash of the client address and User-Agent (`domain.devices`), so no device text is kept here; the primary key
(user, fingerprint) is the lookup each login makes, and the rows go with their user.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "known_devices",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "fingerprint"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("known_devices")
