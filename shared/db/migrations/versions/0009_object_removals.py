"""object removals: storage keys and prefixes of deleted and expired rows, removed again later

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "object_removals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("object_removals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_object_removals_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("object_removals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_object_removals_created_at"))
    op.drop_table("object_removals")
