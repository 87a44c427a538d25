"""The engine's Keras side keys off the kind definitions: names, grids, needs, sampling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from shared.job_specs import validate_sample_params, validate_training_spec
from shared.kinds import KIND_SPECS

pytest.importorskip("tensorflow")

from workers.engine.data import Arrays, load_arrays  # noqa: E402
from workers.engine.kinds import KINDS, noisy_images  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.sampling import needs_dataset, sample_images  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def arrays(mnist_path: Path) -> Arrays:
    return load_arrays(mnist_path)


def test_every_defined_kind_has_an_engine_and_its_grid() -> None:
    assert list(KINDS) == list(KIND_SPECS)
    for name, kind in KINDS.items():
        assert kind.spec is KIND_SPECS[name]
        assert kind.final_grid == KIND_SPECS[name].final_grid
    assert KINDS["denoiser"].final_grid == "samples/denoised.png"


def test_needs_read_the_definition_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [needs_dataset(name) for name in KIND_SPECS] == [True, True, True, False]
    assert needs_dataset("unknown")
    spec = dataclasses.replace(KIND_SPECS["autoencoder"], sampling_needs_dataset=False)
    monkeypatch.setitem(KIND_SPECS, "autoencoder", spec)
    assert not needs_dataset("autoencoder")


def test_labels_are_required_where_the_definition_says(
    arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlabelled = Arrays(arrays.x_train[:100], None, None, None)
    with pytest.raises(UserError, match="the classifier needs labels"):
        KINDS["classifier"].check_labels(unlabelled)
    KINDS["autoencoder"].check_labels(unlabelled)
    spec = dataclasses.replace(KIND_SPECS["autoencoder"], needs_labels=True)
    monkeypatch.setitem(KIND_SPECS, "autoencoder", spec)
    with pytest.raises(UserError, match="the autoencoder needs labels"):
        KINDS["autoencoder"].check_labels(unlabelled)


def test_the_denoisers_default_noise_is_the_seeds_unclipped(arrays: Arrays) -> None:
    params = validate_training_spec("denoiser", {})
    assert params["noise_factor"] == 0.55 and params["clip"] is False
    x = arrays.x_test
    noisy = KINDS["denoiser"].inputs(x, params, 0)  # type: ignore[attr-defined]
    assert noisy.min() < -1.0 and noisy.max() > 2.0
    assert np.mean((noisy - x) ** 2) == pytest.approx(0.55**2, rel=0.02)
    clipped = noisy_images(x, 0.55, True, 0)
    assert clipped.min() == 0.0 and clipped.max() == 1.0


@pytest.mark.parametrize("name", list(KIND_SPECS))
def test_sampling_each_kind_writes_its_grids(arrays: Arrays, name: str) -> None:
    kind = KINDS[name]
    trained_with = validate_training_spec(name, {})
    model = kind.build(trained_with).export
    params = validate_sample_params({"count": 9, "seed": 3}, name)
    given = arrays if needs_dataset(name) else None
    files = sample_images(name, model, given, params, trained_with)
    expected = {"samples/grid.png"}
    if not KIND_SPECS[name].sampling_needs_dataset:
        expected.add("samples/interpolation.png")
    assert set(files) == expected
    assert all(data.startswith(PNG) for data in files.values())
    if needs_dataset(name):
        with pytest.raises(UserError, match="needs its dataset"):
            sample_images(name, model, None, params, trained_with)


def test_sampling_an_unknown_kind_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not supported"):
        sample_images("vae", None, None, {"count": 1, "seed": 0}, {})


def test_the_conv_option_keeps_the_autoencoders_interface() -> None:
    """784 in, 784 in [0, 1] out, a code of encoding_dim: what grids, scores and sampling use."""
    for kind in ("autoencoder", "denoiser"):
        params = validate_training_spec(kind, {"architecture": "conv", "encoding_dim": 16})
        model = KINDS[kind].build(params).model
        assert model.name == "conv_autoencoder"
        assert model.get_layer("encoded").output.shape[-1] == 16
        out = np.asarray(model(np.random.default_rng(0).random((3, 784), dtype=np.float32)))
        assert out.shape == (3, 784) and out.min() >= 0.0 and out.max() <= 1.0
    dense = KINDS["autoencoder"].build(validate_training_spec("autoencoder", {})).model
    assert dense.name == "autoencoder"  # the seed's network stays the default
