"""sweeps (issue 15): the sweeps table, jobs.sweep_id and jobs.sweep_trial, and Optuna's tables

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 04:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("sampler", sa.String(length=16), nullable=False),
        sa.Column("pruner", sa.String(length=16), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("parallel", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("study_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_name"),
    )
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sweeps_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweeps_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sweep_trial", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_sweep_id"), ["sweep_id"], unique=False)
        batch_op.create_foreign_key("fk_jobs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"])
    _create_optuna_tables()


def _create_optuna_tables() -> None:
    """Optuna's RDB storage tables, made here once (not by each process racing to create them
    on first use). Optuna's own schema check is skipped at run time: it reads the one
    ``alembic_version`` table, which is the service's (see ``shared.sweeps.study``)."""
    from optuna.storages._rdb import models
    from optuna.version import __version__

    bind = op.get_bind()
    models.BaseModel.metadata.create_all(bind)
    version_info = models.BaseModel.metadata.tables["version_info"]
    if bind.execute(sa.select(sa.func.count()).select_from(version_info)).scalar() == 0:
        bind.execute(
            version_info.insert().values(
                version_info_id=1, schema_version=models.SCHEMA_VERSION, library_version=__version__
            )
        )


def downgrade() -> None:
    from optuna.storages._rdb import models

    models.BaseModel.metadata.drop_all(op.get_bind())
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_sweep_id_sweeps", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_jobs_sweep_id"))
        batch_op.drop_column("sweep_trial")
        batch_op.drop_column("sweep_id")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweeps_created_at"))
        batch_op.drop_index(batch_op.f("ix_sweeps_owner"))
    op.drop_table("sweeps")
