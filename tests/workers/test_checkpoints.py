"""Checkpoints keyed by variable path: round trips, stable keys, clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.job_specs import validate_training_spec

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from workers.engine.checkpoints import (  # noqa: E402
    FORMAT_VERSION,
    CheckpointMismatch,
    EpochRecord,
    checkpoint_variables,
    restore_checkpoint,
    save_checkpoint,
)
from workers.engine.gan import GAN  # noqa: E402
from workers.engine.kinds import KINDS, Built  # noqa: E402
from workers.engine.models import build_discriminator, build_generator  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402

RECORD = EpochRecord(step=300, values={"d_loss": 0.5}, seconds=1.5, progress=0.15, eta=8.5)


def build(kind: str, **overrides: Any) -> Built:
    return KINDS[kind].build(validate_training_spec(kind, overrides))


def scramble(built: Built, seed: int) -> None:
    """Give every weight and optimizer variable a distinct value, as training would."""
    rng = np.random.default_rng(seed)
    for variable in checkpoint_variables(built.model, built.optimizers).values():
        shape = tuple(variable.shape)
        if "int" in str(variable.dtype):
            variable.assign(rng.integers(1, 1000, size=shape).astype(variable.dtype))
        else:
            variable.assign(rng.normal(size=shape).astype(variable.dtype))


def state(built: Built) -> dict[str, np.ndarray]:
    return {
        key: np.asarray(variable.numpy()).copy()
        for key, variable in checkpoint_variables(built.model, built.optimizers).items()
    }


def saved(built: Built, path: Path, epoch: int = 3) -> Path:
    save_checkpoint(path, built.model, built.optimizers, epoch, RECORD)
    return path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_keys_are_unique_and_the_same_in_every_build(kind: str) -> None:
    """A second build in one process gets new auto-names (adam_1, ...), never new keys."""
    first, second = build(kind), build(kind)
    keys = list(checkpoint_variables(first.model, first.optimizers))
    assert keys == list(checkpoint_variables(second.model, second.optimizers))
    weights = len(first.model.weights)
    optimizer_vars = sum(len(optimizer.variables) for optimizer in first.optimizers)
    assert len(set(keys)) == weights + optimizer_vars
    assert all(key.startswith(("model/", "optimizer")) for key in keys)


def test_gan_keys_name_each_network_and_optimizer() -> None:
    keys = set(checkpoint_variables(build("gan").model, build("gan").optimizers))
    assert {
        "model/discriminator/conv_1/kernel",
        "model/generator/project/kernel",
        "model/generator/bn_0/moving_mean",
        "optimizer0/iteration",
        "optimizer0/discriminator/conv_1/kernel/momentum",
        "optimizer1/generator/project/kernel/velocity",
    } <= keys


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_into_a_freshly_built_model(kind: str, tmp_path: Path) -> None:
    trained = build(kind)
    scramble(trained, seed=1)
    path = saved(trained, tmp_path / "checkpoint.npz", epoch=3)

    fresh = build(kind)
    before = state(fresh)
    assert any(not np.array_equal(before[k], v) for k, v in state(trained).items())
    epoch, record = restore_checkpoint(path, fresh.model, fresh.optimizers)

    assert (epoch, record) == (3, RECORD)
    expected, restored = state(trained), state(fresh)
    assert expected.keys() == restored.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


GAN_OPTIONS = [
    {"architecture": "dcgan"},
    {"loss": "hinge"},
    {"conditional": True},
    {"architecture": "dcgan", "loss": "hinge", "conditional": True, "ema": 0.99},
]


@pytest.mark.parametrize("options", GAN_OPTIONS)
def test_the_gans_options_round_trip(options: dict[str, Any], tmp_path: Path) -> None:
    """Every network and optimizer variable an option adds (BatchNorm, label embeddings, the
    average) is saved and restored, under keys stable across builds."""
    trained = build("gan", **options)
    keys = list(checkpoint_variables(trained.model, trained.optimizers))
    assert keys == list(checkpoint_variables(*_parts(build("gan", **options))))
    if options.get("conditional"):
        assert {
            "model/generator/label_embedding/embeddings",
            "model/discriminator/label_projection/embeddings",
            "optimizer1/generator/label_embedding/embeddings/momentum",
        } <= set(keys)
    if options.get("architecture") == "dcgan":
        assert "model/discriminator/bn_2/moving_variance" in keys
    scramble(trained, seed=5)
    path = saved(trained, tmp_path / "checkpoint.npz")
    fresh = build("gan", **options)
    restore_checkpoint(path, fresh.model, fresh.optimizers)
    expected = state(trained)
    for key, value in state(fresh).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    if options.get("conditional") or options.get("architecture"):
        # Another network's checkpoint is refused, never mis-loaded (the hinge loss alone
        # changes no variable: only the discriminator's output activation).
        seed = build("gan")
        with pytest.raises(CheckpointMismatch):
            restore_checkpoint(path, seed.model, seed.optimizers)


def _parts(built: Built) -> tuple[keras.Model, list[keras.optimizers.Optimizer]]:
    return built.model, built.optimizers


def test_another_shape_is_refused_with_the_names(tmp_path: Path) -> None:
    path = saved(build("classifier", hidden_units=64), tmp_path / "checkpoint.npz")
    wider = build("classifier", hidden_units=128)
    with pytest.raises(CheckpointMismatch, match="of another shape") as caught:
        restore_checkpoint(path, wider.model, wider.optimizers)
    message = str(caught.value)
    assert "model/dense_1/kernel (784, 64) in the checkpoint, (784, 128) in the model" in message
    assert "and " in message and "more" in message  # a few names, then a count
    assert isinstance(caught.value, UserError)  # fails the job at once, not retried


class GanWithEma(GAN):
    """The GAN plus one weight the checkpoint does not have (as an EMA option would add)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ema_decay = self.add_weight(shape=(), initializer="zeros", name="ema_decay")


def _gan(cls: type[GAN]) -> Built:
    generator = build_generator(32)
    gan = cls(build_discriminator(), generator, 32)
    d_opt, g_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    gan.compile(d_opt, g_opt)
    return Built(gan, [d_opt, g_opt], generator)


def test_an_extra_weight_is_refused_and_nothing_is_loaded(tmp_path: Path) -> None:
    plain = _gan(GAN)
    scramble(plain, seed=2)
    path = saved(plain, tmp_path / "checkpoint.npz")
    with_ema = _gan(GanWithEma)
    before = state(with_ema)
    assert "model/ema_decay" in before
    with pytest.raises(
        CheckpointMismatch, match=r"missing from the checkpoint: 1 \(model/ema_decay\)"
    ):
        restore_checkpoint(path, with_ema.model, with_ema.optimizers)
    after = state(with_ema)
    assert all(np.array_equal(before[key], after[key]) for key in before)

    # The other way round: the checkpoint has a weight the model lacks.
    path = saved(with_ema, tmp_path / "with-ema.npz")
    with pytest.raises(CheckpointMismatch, match=r"not in the model: 1 \(model/ema_decay\)"):
        restore_checkpoint(path, plain.model, plain.optimizers)


def test_a_positional_checkpoint_is_refused_as_predating_format_2(tmp_path: Path) -> None:
    """Format 1 (no version): w0000... and o0_0000..., restored by position before."""
    built = build("autoencoder")
    arrays: dict[str, np.ndarray] = {
        "epoch": np.asarray(2, dtype=np.int64),
        "record": np.frombuffer(json.dumps(RECORD.__dict__).encode(), dtype=np.uint8),
    }
    for i, weight in enumerate(built.model.weights):
        arrays[f"w{i:04d}"] = np.asarray(weight.numpy())
    for i, variable in enumerate(built.optimizers[0].variables):
        arrays[f"o0_{i:04d}"] = np.asarray(variable.numpy())
    path = tmp_path / "old.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CheckpointMismatch, match=f"predates checkpoint format {FORMAT_VERSION}"):
        restore_checkpoint(path, built.model, built.optimizers)


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    built = build("autoencoder")
    path = saved(built, tmp_path / "checkpoint.npz")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["format_version"] = np.asarray(FORMAT_VERSION + 1, dtype=np.int64)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CheckpointMismatch, match=f"has format {FORMAT_VERSION + 1}"):
        restore_checkpoint(path, built.model, built.optimizers)
    np.savez(path, x=np.zeros(3))
    with pytest.raises(CheckpointMismatch, match="not a gentrain checkpoint"):
        restore_checkpoint(path, built.model, built.optimizers)


def test_a_fresh_process_restores_under_two_replicas(tmp_path: Path) -> None:
    """Saved here after other builds (auto-names counted up), restored in a new process inside
    MirroredStrategy over 2 logical CPUs, saved there and restored here again."""
    for _ in range(2):
        build("gan")
    trained = build("gan")
    scramble(trained, seed=3)
    source = saved(trained, tmp_path / "here.npz", epoch=5)
    target = tmp_path / "there.npz"
    script = Path(__file__).with_name("checkpoint_replicas.py")
    result = subprocess.run(
        [sys.executable, str(script), "gan", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = state(trained)
    assert (report["epoch"], report["step"]) == (5, RECORD.step)
    assert report["sums"].keys() == expected.keys()
    for key, value in expected.items():
        assert report["sums"][key] == pytest.approx(float(np.sum(value, dtype=np.float64))), key

    back = build("gan")
    restore_checkpoint(target, back.model, back.optimizers)
    for key, value in state(back).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_loss_scale_optimizers_round_trip(tmp_path: Path) -> None:
    """The GAN under mixed_float16 (as on a GPU) wraps each Adam in a LossScaleOptimizer."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        trained, fresh = build("gan"), build("gan")
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(trained.optimizers[0], keras.optimizers.LossScaleOptimizer)
    keys = checkpoint_variables(trained.model, trained.optimizers)
    assert list(keys) == list(checkpoint_variables(fresh.model, fresh.optimizers))
    assert {
        "optimizer0/dynamic_scale",
        "optimizer1/inner/generator/project/kernel/momentum",
    } <= set(keys)
    scramble(trained, seed=4)
    restore_checkpoint(saved(trained, tmp_path / "checkpoint.npz"), fresh.model, fresh.optimizers)
    expected = state(trained)
    for key, value in state(fresh).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_the_generators_moving_average_round_trips_and_is_what_is_exported(
    tmp_path: Path,
) -> None:
    """With ema the average is an optimizer slot: saved, restored, and synced into the export
    (the training generator keeps its own weights)."""
    trained = build("gan", ema=0.999)
    keys = set(checkpoint_variables(trained.model, trained.optimizers))
    assert "optimizer1/generator/project/kernel/average" in keys
    scramble(trained, seed=3)
    path = saved(trained, tmp_path / "checkpoint.npz")

    fresh = build("gan", ema=0.999)
    restore_checkpoint(path, fresh.model, fresh.optimizers)
    raw = [variable.numpy().copy() for variable in fresh.model.generator.trainable_variables]
    fresh.sync_export()
    average = state(trained)["optimizer1/generator/project/kernel/average"]
    np.testing.assert_array_equal(fresh.export.get_layer("project").kernel.numpy(), average)
    assert fresh.export is not fresh.model.generator
    for variable, value in zip(fresh.model.generator.trainable_variables, raw, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    # BatchNorm's statistics are measured under the averaged weights; the generator keeps its own.
    own = state(trained)["model/generator/bn_0/moving_mean"]
    np.testing.assert_array_equal(fresh.model.generator.get_layer("bn_0").moving_mean.numpy(), own)
    measured = fresh.export.get_layer("bn_0").moving_mean.numpy()
    assert np.all(np.isfinite(measured)) and not np.allclose(measured, own)
    # Without ema the generator itself is exported, as before the option.
    plain = build("gan")
    assert plain.export is plain.model.generator


def test_vae_keys_name_its_encoder_decoder_and_optimizer() -> None:
    """The sampling layer's random state is no weight: a resumed VAE draws anew from its seed."""
    built = build("vae")
    keys = set(checkpoint_variables(built.model, built.optimizers))
    assert {
        "model/encoder/conv_1/kernel",
        "model/encoder/z_log_var/bias",
        "model/decoder/project/kernel",
        "model/decoder/pixels/kernel",
        "optimizer0/iteration",
        "optimizer0/encoder/z_mean/kernel/momentum",
        "optimizer0/decoder/deconv_2/bias/velocity",
    } <= keys
    assert not any("seed" in key or "sampling" in key for key in keys)


def test_the_vaes_loss_scale_optimizer_round_trips(tmp_path: Path) -> None:
    """Under mixed_float16 (a GPU) the VAE's Adam is wrapped for loss scaling, once."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        trained, fresh = build("vae"), build("vae")
    finally:
        keras.config.set_dtype_policy("float32")
    [optimizer] = trained.optimizers
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert trained.model.optimizer is optimizer
    keys = checkpoint_variables(trained.model, trained.optimizers)
    assert {"optimizer0/dynamic_scale", "optimizer0/inner/decoder/project/kernel/momentum"} <= set(
        keys
    )
    scramble(trained, seed=5)
    restore_checkpoint(saved(trained, tmp_path / "checkpoint.npz"), fresh.model, fresh.optimizers)
    expected = state(trained)
    for key, value in state(fresh).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
