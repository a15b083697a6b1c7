"""goals and group savings challenges: goals, groups, members, contributions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:00:00.000000

Written by hand. The unique keys make every effect happen once: a contribution's id is its command's id,
an Idempotency-Key names one contribution per goal (per member of a group), and a goal or group
holds at most one GoalReached event.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONEY = sa.Numeric(precision=20, scale=4)
RATE = sa.Numeric(precision=24, scale=10)


def _created() -> sa.Column:
    return sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False)


def _contribution_columns() -> list[sa.Column]:
    """The columns goal and group contributions share (after their owner's id)."""
    return [
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('original_amount', MONEY, nullable=False),
        sa.Column('original_currency', sa.String(length=3), nullable=False),
        sa.Column('fx_rate', RATE, nullable=True),
        sa.Column('fx_rate_date', sa.Date(), nullable=True),
        sa.Column('contributed_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('correlation_id', sa.String(length=100), nullable=False),
        _created(),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'goals',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('target_amount', MONEY, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('target_date', sa.Date(), nullable=False),
        _created(),
        sa.Column('reached_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reached_event_id', sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(['household_id'], ['households.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('reached_event_id'),
    )
    op.create_index('ix_goals_household_id', 'goals', ['household_id'], unique=False)

    op.create_table(
        'goal_contributions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('goal_id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        *_contribution_columns(),
        sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['household_id'], ['households.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('goal_id', 'idempotency_key'),
    )
    op.create_index('ix_goal_contributions_goal_status', 'goal_contributions', ['goal_id', 'status'], unique=False)

    op.create_table(
        'groups',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('creator_id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('target_amount', MONEY, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('target_date', sa.Date(), nullable=True),
        _created(),
        sa.Column('reached_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reached_event_id', sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(['creator_id'], ['users.id']),
        sa.ForeignKeyConstraint(['household_id'], ['households.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('reached_event_id'),
    )
    op.create_index('ix_groups_creator_id', 'groups', ['creator_id'], unique=False)

    op.create_table(
        'group_members',
        sa.Column('group_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('invited_by', sa.Uuid(), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invited_by'], ['users.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('group_id', 'user_id'),
    )
    op.create_index('ix_group_members_user_id', 'group_members', ['user_id'], unique=False)

    op.create_table(
        'group_contributions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('group_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        *_contribution_columns(),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['household_id'], ['households.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'user_id', 'idempotency_key'),
    )
    op.create_index('ix_group_contributions_group_status', 'group_contributions', ['group_id', 'status'],
                    unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_group_contributions_group_status', table_name='group_contributions')
    op.drop_table('group_contributions')
    op.drop_index('ix_group_members_user_id', table_name='group_members')
    op.drop_table('group_members')
    op.drop_index('ix_groups_creator_id', table_name='groups')
    op.drop_table('groups')
    op.drop_index('ix_goal_contributions_goal_status', table_name='goal_contributions')
    op.drop_table('goal_contributions')
    op.drop_index('ix_goals_household_id', table_name='goals')
    op.drop_table('goals')
