"""notifications: email, SMS and webhook channels, preferences, webhooks and their delivery log

Revision ID: 0008
Revises: 0007
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_COLUMNS = (
    ("target", sa.String(length=64), {"server_default": "", "nullable": False}),
    ("kind", sa.String(length=30), {}),
    ("html", sa.Text(), {}),
    ("short", sa.String(length=320), {}),
    ("document", sa.JSON(), {}),
    ("reason", sa.Text(), {}),
    ("provider", sa.String(length=20), {}),
    ("provider_message_id", sa.String(length=100), {}),
    ("attempts", sa.Integer(), {"server_default": "0", "nullable": False}),
    ("next_attempt_at", sa.DateTime(timezone=True), {}),
    ("claimed_at", sa.DateTime(timezone=True), {}),
    ("sent_at", sa.DateTime(timezone=True), {}),
    ("event_occurred_at", sa.DateTime(timezone=True), {}),
)


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("users", sa.Column("locale", sa.String(length=16), server_default="en", nullable=False))
    for name, type_, options in _COLUMNS:
        op.add_column("notifications", sa.Column(name, type_, nullable=options.pop("nullable", True), **options))
    op.drop_constraint("notifications_event_id_user_id_channel_key", "notifications", type_="unique")
    op.create_unique_constraint("uq_notifications_event_recipient", "notifications",
                                ["event_id", "user_id", "channel", "target"])
    op.create_index("ix_notifications_due", "notifications", ["next_attempt_at"],
                    postgresql_where=sa.text("status in ('queued', 'sending')"))
    op.create_index("ix_notifications_inbox", "notifications",
                    ["user_id", "household_id", "channel", "created_at", "id"])
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("retry_in_ms", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notification_attempts_notification_id"), "notification_attempts", ["notification_id"])
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "kind", "channel"),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_webhooks_household_id"), "webhooks", ["household_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_webhooks_household_id"), table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_table("notification_preferences")
    op.drop_index(op.f("ix_notification_attempts_notification_id"), table_name="notification_attempts")
    op.drop_table("notification_attempts")
    op.drop_index("ix_notifications_inbox", table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_constraint("uq_notifications_event_recipient", "notifications", type_="unique")
    op.execute("DELETE FROM notifications WHERE channel <> 'in_app'")
    op.create_unique_constraint("notifications_event_id_user_id_channel_key", "notifications",
                                ["event_id", "user_id", "channel"])
    for name, _, _ in reversed(_COLUMNS):
        op.drop_column("notifications", name)
    op.drop_column("users", "locale")
