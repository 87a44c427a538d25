"""Optuna on the service's own database: its RDB storage, and a sweep's study, sampler and
pruner. Imported only where a sweep is created or driven (Optuna takes ~0.5 s to import)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from shared.db.models import Sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)


@lru_cache(maxsize=8)
def storage(database_url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on ``database_url``, one per process.

    Its tables are made by migration 0010, not here (processes would race to create them), and
    its schema check is skipped: Optuna reads the version from ``alembic_version``, which in
    this database is the service's own."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 30}}
    return optuna.storages.RDBStorage(
        database_url,
        engine_kwargs=kwargs,
        skip_compatibility_check=True,
        skip_table_creation=True,
    )


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    """Optuna's distribution for each dimension of a validated space."""
    found: dict[str, BaseDistribution] = {}
    for name, dim in space.items():
        if "values" in dim:
            found[name] = CategoricalDistribution(dim["values"])
        elif dim.get("integer"):
            found[name] = IntDistribution(
                dim["low"], dim["high"], log=dim["log"], step=dim.get("step", 1)
            )
        else:
            found[name] = FloatDistribution(
                dim["low"], dim["high"], log=dim["log"], step=dim.get("step")
            )
    return found


def sampler(sweep: Sweep, asked: int) -> optuna.samplers.BaseSampler:
    """The sweep's sampler for its next ask. Each driving pass makes a fresh one: seeded with
    the sweep's seed plus the trials asked so far, so a seeded sweep does not draw its first
    point again at every pass, and is still reproducible."""
    seed = None if sweep.seed is None else sweep.seed + asked
    if sweep.sampler == "grid":
        grid = {name: dim["values"] for name, dim in sweep.space.items()}
        return optuna.samplers.GridSampler(grid, seed=sweep.seed)
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    """The sweep's pruner: none, median (after 2 finished trials) or hyperband."""
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def load_study(database_url: str, sweep: Sweep, asked: int | None = None) -> optuna.Study:
    """The sweep's study with its pruner, created by the first driver (after the sweep's row is
    committed: on SQLite, Optuna's connection needs the write lock). With ``asked`` (to ask for
    a trial), its sampler; else a plain one: the grid sampler stops the study when it tells the
    last point (``Study.stop``, which raises outside ``optimize``)."""
    return optuna.create_study(
        storage=storage(database_url),
        study_name=sweep.study_name,
        direction=optuna.study.StudyDirection.MAXIMIZE
        if sweep.direction == "maximize"
        else optuna.study.StudyDirection.MINIMIZE,
        sampler=optuna.samplers.RandomSampler() if asked is None else sampler(sweep, asked),
        pruner=pruner(sweep),
        load_if_exists=True,
    )


# Importances mean little before this many trials have finished.
MIN_TRIALS_FOR_IMPORTANCES = 4


def importances(database_url: str, sweep: Sweep) -> dict[str, float] | None:
    """How much each searched parameter explains the objective (PED-ANOVA: numpy only, where
    fANOVA needs scikit-learn), once enough trials finished; None before."""
    study = load_study(database_url, sweep)
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCES:
        return None
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {name: round(float(value), 4) for name, value in found.items()}
