"""The engine's Keras side keys off the kind definitions: names, grids, needs, sampling."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shared.job_specs import validate_sample_params, validate_training_spec
from shared.kinds import KIND_SPECS

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from workers.engine.data import Arrays, draw, load_arrays  # noqa: E402
from workers.engine.interpolation import split_at_code  # noqa: E402
from workers.engine.kinds import KINDS, noisy_images  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.sampling import needs_dataset, sample_images  # noqa: E402
from workers.engine.vae import fit_mixture  # noqa: E402

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
    assert [needs_dataset(name) for name in KIND_SPECS] == [True, True, True, False, True]
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
    if name != "classifier":  # every generative kind walks between two codes
        expected.add("samples/interpolation.png")
    assert set(files) == expected
    assert all(data.startswith(PNG) for data in files.values())
    if needs_dataset(name):
        with pytest.raises(UserError, match="needs its dataset"):
            sample_images(name, model, None, params, trained_with)


def test_sampling_an_unknown_kind_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not supported"):
        sample_images("flow", None, None, {"count": 1, "seed": 0}, {})


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


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255.0


@pytest.mark.parametrize(
    ("name", "options", "count", "grid"),
    [
        ("vae", {"latent_dim": 4}, 5, (3 * 56, 2 * 56)),  # 5 from the prior, 3 to a row
        ("autoencoder", {}, 1, (56, 2 * 56)),  # one digit above its reconstruction
        ("autoencoder", {"architecture": "conv", "encoding_dim": 8}, 3, (3 * 56, 2 * 56)),
        ("denoiser", {}, 2, (2 * 56, 3 * 56)),  # noisy, denoised, original
    ],
)
def test_sampling_interpolates_between_two_held_out_digits(
    arrays: Arrays, name: str, options: dict[str, Any], count: int, grid: tuple[int, int]
) -> None:
    """The grid keeps its count (even of one digit); the strip runs from one held-out digit the
    seed chose, through 10 decoded codes, to another."""
    trained_with = validate_training_spec(name, options)
    model = KINDS[name].build(trained_with).export
    params = validate_sample_params({"count": count, "seed": 7}, name)
    files = sample_images(name, model, arrays, params, trained_with)
    assert set(files) == {"samples/grid.png", "samples/interpolation.png"}
    assert png_size(files["samples/grid.png"]) == grid
    strip = files["samples/interpolation.png"]
    assert png_size(strip) == (12 * 56, 56)
    # The first two held-out digits the job drew: the grid's first two, for the autoencoders.
    drawn = draw(arrays, KINDS[name].held_out_count(params), 7).images
    ends = drawn[:2].reshape(2, 28, 28)
    pixels = png_pixels(strip)[::2, ::2]  # each pixel drawn 2×2
    np.testing.assert_allclose(pixels[:, :28], ends[0], atol=1 / 255)
    np.testing.assert_allclose(pixels[:, -28:], ends[1], atol=1 / 255)
    assert not np.allclose(ends[0], ends[1])
    # Another seed, other ends.
    other = sample_images(name, model, arrays, {**params, "seed": 8}, trained_with)
    assert other["samples/interpolation.png"] != strip


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_an_autoencoder_splits_at_its_code_into_the_same_network(architecture: str) -> None:
    params = validate_training_spec("autoencoder", {"architecture": architecture})
    model = KINDS["autoencoder"].build(params).model
    encode, decode = split_at_code(model)
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    codes = encode(x)
    assert codes.shape == (4, 32)
    np.testing.assert_allclose(decode(codes), np.asarray(model(x)), atol=1e-6)


def test_the_vaes_export_round_trips_with_its_encoder_and_decoder(
    arrays: Arrays, tmp_path: Path
) -> None:
    """model.keras loads in safe mode with no custom objects; it reconstructs through the mean
    code, and sampling finds the decoder (the prior's side) and the encoder in it."""
    trained_with = validate_training_spec("vae", {"latent_dim": 6})
    built = KINDS["vae"].build(trained_with)
    path = tmp_path / "model.keras"
    built.export.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert loaded.get_layer("decoder").inputs[0].shape[-1] == 6
    z_mean, z_log_var = loaded.get_layer("encoder")(arrays.x_test[:3])
    assert z_mean.shape == z_log_var.shape == (3, 6)
    x = arrays.x_test[:5]
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(built.model(x)), atol=1e-6)
    params = validate_sample_params({"count": 4, "seed": 1}, "vae")
    here = sample_images("vae", built.export, arrays, params, trained_with)
    assert sample_images("vae", loaded, arrays, params, trained_with) == here


def test_em_recovers_a_mixture_of_two_separated_gaussians() -> None:
    rng = np.random.default_rng(0)
    left = rng.normal([-4.0, 0.0], [0.5, 1.0], size=(300, 2))
    right = rng.normal([3.0, 2.0], [1.0, 0.3], size=(100, 2))
    log_weights, means, scale_tril = fit_mixture(np.concatenate([left, right]), 2, seed=1)
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(np.exp(log_weights[order]), [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(means[order], [[-4.0, 0.0], [3.0, 2.0]], atol=0.2)
    spreads = np.sqrt(np.einsum("kij,kij->ki", scale_tril, scale_tril))[order]
    np.testing.assert_allclose(spreads, [[0.5, 1.0], [1.0, 0.3]], rtol=0.15)
    with pytest.raises(ValueError, match="at least as many codes"):
        fit_mixture(left[:2], 3, seed=1)


def test_a_fitted_mixture_prior_round_trips_in_the_vaes_export(
    arrays: Arrays, tmp_path: Path
) -> None:
    """The export carries the mixture (safe mode loads it), and sampling draws from it: the
    same grid from the loaded model; another grid than N(0, I) gives."""
    trained_with = validate_training_spec(
        "vae", {"latent_dim": 3, "prior": "mixture", "prior_components": 4}
    )
    built = KINDS["vae"].build(trained_with)
    built.sync_export(Arrays(arrays.x_train[:200], None, None, None))
    path = tmp_path / "model.keras"
    built.export.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    for name in ("log_weights", "means", "scale_tril"):
        np.testing.assert_array_equal(
            np.asarray(getattr(loaded.get_layer("prior"), name)),
            np.asarray(getattr(built.export.get_layer("prior"), name)),
        )
    params = validate_sample_params({"count": 4, "seed": 1}, "vae")
    here = sample_images("vae", built.export, arrays, params, trained_with)
    assert sample_images("vae", loaded, arrays, params, trained_with) == here
    x = arrays.x_test[:5]  # the prior is no step on the reconstruction's way
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(built.model(x)), atol=1e-6)
    standard = validate_training_spec("vae", {"latent_dim": 3})
    plain = KINDS["vae"].build(standard).export
    for part in ("encoder", "decoder"):  # the same networks, with no mixture
        plain.get_layer(part).set_weights(built.export.get_layer(part).get_weights())
    drawn = sample_images("vae", plain, arrays, params, standard)
    assert drawn["samples/grid.png"] != here["samples/grid.png"]


def test_a_mixture_needs_as_many_training_images_as_components(arrays: Arrays) -> None:
    params = validate_training_spec("vae", {"prior": "mixture", "prior_components": 50})
    few = Arrays(arrays.x_train[:40], None, arrays.x_test, None)
    with pytest.raises(UserError, match="mixture of 50 Gaussians needs at least as many"):
        KINDS["vae"].plan(few, params, 64)


def test_a_mixture_is_fitted_to_a_bounded_sample_of_codes(
    arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most PRIOR_FIT_IMAGES training digits (the job's seed picks them), encoded a block at
    a time: the same codes the encoder gives them all at once."""
    from workers.engine import vae

    encoder = KINDS["vae"].build(validate_training_spec("vae", {"latent_dim": 3})).model.encoder
    images = arrays.x_train[:120]
    monkeypatch.setattr(vae, "_EVAL_BLOCK", 16)
    whole = vae.mean_codes(encoder, images)
    np.testing.assert_allclose(vae.fitting_codes(encoder, images, seed=0), whole, atol=1e-5)
    monkeypatch.setattr(vae, "PRIOR_FIT_IMAGES", 50)
    codes = vae.fitting_codes(encoder, images, seed=0)
    assert codes.shape == (50, 3)
    rows = [np.flatnonzero(np.abs(whole - code).max(axis=1) < 1e-5) for code in codes]
    assert all(len(found) == 1 for found in rows)  # each one training digit's code
    assert len({int(found[0]) for found in rows}) == 50  # no digit twice
    again = vae.fitting_codes(encoder, images, seed=1)
    assert not np.allclose(again, codes)  # another seed, other digits
