"""job priority: 0-9 (default 5), the order queued jobs are claimed in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 04:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("5"))
        )
        # A worker claims the queued job of highest priority, oldest first.
        batch_op.create_index(
            "ix_jobs_queue_order", ["status", "priority", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_queue_order")
        batch_op.drop_column("priority")
