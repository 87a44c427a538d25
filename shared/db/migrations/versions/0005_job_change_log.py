"""job change log: every change of a job, not only its status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 21:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("type", sa.String(length=16), nullable=False, server_default="status")
        )
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM job_events WHERE type != 'status'")
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_column("payload")
        batch_op.drop_column("type")
