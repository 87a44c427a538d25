"""The kind definitions: the seed's defaults, the rules, and what each kind needs and makes."""

from __future__ import annotations

import json

import pytest

from shared.job_specs import SpecError, validate_sample_params, validate_training_spec
from shared.kinds import KIND_SPECS, SAMPLE_KIND, job_kinds

COMMON = {"seed": 0, "max_train_images": 0, "mixed_precision": False, "max_runtime_seconds": 0}
AUTOENCODER = {
    "epochs": 50,
    "batch_size": 256,
    "learning_rate": 0.001,
    "encoding_dim": 32,
    "architecture": "dense",  # the seed's 784-32-784 network
    "shuffle": True,
    "sample_every": 0,
    **COMMON,
}
# The stored params of a job submitted with none: the seed's defaults, every key filled in.
DEFAULTS = {
    "classifier": {
        "epochs": 2,
        "batch_size": 64,
        "learning_rate": 0.001,
        "hidden_units": 64,
        "validation_split": 0.2,
        "shuffle": True,
        "sample_every": 0,
        **COMMON,
    },
    "autoencoder": AUTOENCODER,
    "denoiser": {**AUTOENCODER, "noise_factor": 0.55, "clip": False},
    "gan": {
        "steps": 2000,
        "batch_size": 128,
        "learning_rate": 0.0004,
        "latent_dim": 32,
        "steps_per_epoch": 100,
        "sample_every": 500,
        "label_smoothing": 0.0,
        "quality_samples": 2000,
        "ema": 0.0,  # no moving average: the seed's generator as trained
        "architecture": "seed",  # the seed's networks
        "loss": "bce",
        "conditional": False,
        **COMMON,
    },
    "vae": {
        "epochs": 50,
        "batch_size": 128,
        "learning_rate": 0.001,
        "latent_dim": 16,
        "beta": 1.0,  # the KL term as the ELBO weighs it
        "prior": "standard",  # samples from N(0, I), as keras-io's VAE
        "prior_components": 10,
        "shuffle": True,
        "sample_every": 0,
        "quality_samples": 2000,
        **COMMON,
    },
}


@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_defaults_are_the_seeds_and_stored_as_plain_json(kind: str) -> None:
    params = validate_training_spec(kind, {})
    assert params == DEFAULTS[kind]
    assert json.loads(json.dumps(params)) == params


def test_what_each_kind_needs_and_makes() -> None:
    assert list(KIND_SPECS) == ["classifier", "autoencoder", "denoiser", "gan", "vae"]
    grids = {name: spec.final_grid for name, spec in KIND_SPECS.items()}
    assert grids == {
        "classifier": "samples/predictions.png",
        "autoencoder": "samples/reconstructions.png",
        "denoiser": "samples/denoised.png",
        "gan": "samples/generated.png",
        "vae": "samples/generated.png",
    }
    assert [name for name, spec in KIND_SPECS.items() if spec.needs_labels] == ["classifier"]
    assert [name for name, spec in KIND_SPECS.items() if not spec.sampling_needs_dataset] == ["gan"]
    assert all(spec.description for spec in KIND_SPECS.values())


def test_job_kinds_are_the_defined_kinds_and_sampling() -> None:
    assert job_kinds() == [*KIND_SPECS, SAMPLE_KIND] and SAMPLE_KIND == "sample"


def test_the_gans_blocks() -> None:
    assert validate_training_spec("gan", {"steps": 50})["steps_per_epoch"] == 50  # capped
    with pytest.raises(SpecError) as caught:
        validate_training_spec("gan", {"steps": 10, "steps_per_epoch": 3})
    assert caught.value.field == "params.steps_per_epoch"
    assert caught.value.message == "steps (10) must be a multiple of steps_per_epoch (3)"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"clip": 1}, "params.clip", "params.clip must be true or false"),
        ({"noise_factor": True}, "params.noise_factor", "params.noise_factor must be a number"),
        ({"noise_factor": float("inf")}, "params.noise_factor", "must be a finite number"),
        ({"noise_factor": 2.5}, "params.noise_factor", "params.noise_factor must be at most 2"),
        ({"learning_rate": 0}, "params.learning_rate", "must be at least 1e-06"),
        ({"epochs": "3"}, "params.epochs", "params.epochs must be an integer"),
        (
            {"epochs": 0, "zz": 1},
            "params.zz",
            "unknown parameter 'zz'; known: architecture, batch_size",
        ),
    ],
)
def test_errors_name_the_parameter(params: dict, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_training_spec("denoiser", params)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"latent_dim": 0}, "params.latent_dim", "params.latent_dim must be at least 1"),
        ({"latent_dim": 513}, "params.latent_dim", "at most 512"),
        ({"beta": -0.5}, "params.beta", "params.beta must be at least 0"),
        ({"beta": True}, "params.beta", "params.beta must be a number"),
        ({"epochs": 0}, "params.epochs", "at least 1"),
        ({"learning_rate": 2.0}, "params.learning_rate", "at most 1"),
        ({"quality_samples": 1}, "params.quality_samples", "0 or at least 2"),
        ({"epochs": 500, "sample_every": 4}, "params.sample_every", "at least 5"),
        ({"encoding_dim": 8}, "params.encoding_dim", "unknown parameter 'encoding_dim'"),
        ({"prior": "gmm"}, "params.prior", "params.prior must be one of"),
        ({"prior": "mixture", "prior_components": 0}, "params.prior_components", "at least 1"),
        ({"prior": "mixture", "prior_components": 101}, "params.prior_components", "at most 100"),
        ({"prior_components": 20}, "params.prior_components", "applies to prior mixture"),
    ],
)
def test_the_vaes_errors_name_the_parameter(params: dict, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_training_spec("vae", params)
    assert caught.value.field == field
    assert message in caught.value.message


def test_the_runtime_cap_applies() -> None:
    assert validate_training_spec("gan", {"max_runtime_seconds": 60}, 60)["max_runtime_seconds"]
    with pytest.raises(SpecError) as caught:
        validate_training_spec("gan", {"max_runtime_seconds": 61}, 60)
    assert caught.value.field == "params.max_runtime_seconds"
    assert caught.value.message == "max_runtime_seconds must be at most 60"


def test_sample_params_by_kind() -> None:
    assert validate_sample_params({}, "gan") == {"count": 16, "seed": 0, "digits": None}
    assert validate_sample_params({"count": 4}) == {"count": 4, "seed": 0}
    with pytest.raises(SpecError) as caught:
        validate_sample_params({"count": True}, "denoiser")
    assert caught.value.field == "params.count"
