"""Quality metrics: PSNR, SSIM (against tf.image.ssim), FID, classifier score and digit shares in
the pinned feature net's space, on real digits, noise and a collapsed generator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from workers.engine import feature_net  # noqa: E402
from workers.engine.quality import (  # noqa: E402
    classifier_score,
    digit_shares,
    fid,
    frechet_distance,
    gan_quality,
    psnr_db,
    ssim,
    ssim_per_image,
)


@pytest.fixture(scope="module")
def digits(mnist_path: Path) -> dict[str, np.ndarray]:
    """The fixture's digits as float rows in [0, 1] and their labels."""
    with np.load(mnist_path, allow_pickle=False) as npz:
        return {
            "x_train": npz["x_train"].reshape(-1, 784).astype(np.float64) / 255.0,
            "y_train": npz["y_train"],
            "x_test": npz["x_test"].reshape(-1, 784).astype(np.float64) / 255.0,
            "y_test": npz["y_test"],
        }


@pytest.fixture(scope="module")
def features(digits: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Features and class probabilities of real, noise and collapsed image sets (1,000 each)."""
    rng = np.random.default_rng(0)
    sets = {
        "train": digits["x_train"],
        "test": digits["x_test"],
        "noise": rng.uniform(0.0, 1.0, size=(1000, 784)),
        "collapsed": np.repeat(digits["x_test"][:1], 1000, axis=0),
    }
    return {name: feature_net.features_and_probs(x) for name, x in sets.items()}


def _noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0.0, sigma, size=images.shape), 0.0, 1.0)


# PSNR


@pytest.mark.parametrize(
    ("mse", "expected"), [(1.0, 0.0), (0.1, 10.0), (0.01, 20.0), (1e-3, 30.0), (0.25, 6.0206)]
)
def test_psnr_known_values(mse: float, expected: float) -> None:
    assert psnr_db(mse) == pytest.approx(expected, abs=1e-4)


def test_psnr_of_zero_error_is_infinite() -> None:
    assert math.isinf(psnr_db(0.0))


# SSIM


def test_ssim_of_identical_images_is_one(digits: dict[str, np.ndarray]) -> None:
    assert ssim(digits["x_test"], digits["x_test"]) == pytest.approx(1.0, abs=1e-12)


def test_ssim_falls_as_noise_grows(digits: dict[str, np.ndarray]) -> None:
    clean = digits["x_test"][:200]
    scores = [ssim(clean, _noisy(clean, sigma)) for sigma in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(score < 1.0 for score in scores)
    assert all(later < earlier for earlier, later in zip(scores, scores[1:], strict=False))
    assert scores[-1] < 0.6


def test_ssim_takes_rows_or_squares_and_is_symmetric(digits: dict[str, np.ndarray]) -> None:
    clean = digits["x_test"][:50]
    noisy = _noisy(clean, 0.1)
    rows = ssim(clean, noisy)
    assert ssim(clean.reshape(-1, 28, 28), noisy.reshape(-1, 28, 28)) == pytest.approx(rows)
    assert ssim(noisy, clean) == pytest.approx(rows)


def test_ssim_rejects_batches_of_different_sizes(digits: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError):
        ssim(digits["x_test"][:3], digits["x_test"][:4])


@pytest.mark.parametrize("window", [11, 7])
def test_ssim_agrees_with_tensorflow(digits: dict[str, np.ndarray], window: int) -> None:
    clean = digits["x_test"][:100]
    noisy = np.concatenate([_noisy(clean[:50], 0.05), _noisy(clean[50:], 0.3, seed=1)])
    theirs = tf.image.ssim(
        tf.constant(clean.reshape(-1, 28, 28, 1), tf.float32),
        tf.constant(noisy.reshape(-1, 28, 28, 1), tf.float32),
        max_val=1.0,
        filter_size=window,
        filter_sigma=1.5,
        k1=0.01,
        k2=0.03,
    ).numpy()
    ours = ssim_per_image(clean, noisy, window=window)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert ssim(clean, noisy, window=window) == pytest.approx(float(theirs.mean()), abs=1e-5)


# FID


def test_frechet_distance_of_diagonal_gaussians_has_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected)  # 5 + 1 + 1 = 7


def test_frechet_distance_matches_eigenvalues_of_the_product() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # tr sqrt(S1 S2) = Σ sqrt(λ_i(S1 S2)): the product's eigenvalues are real and positive.
    trace_sqrt = np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).real).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(
        frechet_distance(mu2, sigma2, mu1, sigma1), rel=1e-9
    )


def test_fid_of_identical_sets_is_zero(features: dict) -> None:
    real, _ = features["test"]
    assert fid(real, real) == pytest.approx(0.0, abs=1e-6)


def test_fid_separates_real_digits_from_noise_and_collapse(features: dict) -> None:
    train, _ = features["train"]
    real_vs_real = fid(train, features["test"][0])
    real_vs_noise = fid(train, features["noise"][0])
    real_vs_collapsed = fid(train, features["collapsed"][0])
    assert 0.0 < real_vs_real < 5.0
    assert real_vs_noise > 20 * real_vs_real
    assert real_vs_collapsed > 20 * real_vs_real


# Classifier score and digit shares


def test_classifier_score_bounds() -> None:
    assert classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    assert classifier_score(np.eye(10)[np.arange(100) % 10]) == pytest.approx(10.0, rel=1e-6)
    assert classifier_score(np.eye(10)[np.zeros(100, dtype=int)]) == pytest.approx(1.0)


def test_classifier_score_is_high_on_real_digits_and_one_on_collapse(features: dict) -> None:
    assert classifier_score(features["test"][1]) > 8.0
    assert classifier_score(features["collapsed"][1]) == pytest.approx(1.0, abs=0.05)


def test_digit_shares_of_real_test_digits_are_about_a_tenth(features: dict) -> None:
    shares = digit_shares(features["test"][1])
    assert list(shares) == [str(d) for d in range(10)]
    assert sum(shares.values()) == pytest.approx(1.0)
    for share in shares.values():
        assert share == pytest.approx(0.1, abs=0.03)


def test_digit_shares_of_a_collapsed_generator_is_one_digit(
    features: dict, digits: dict[str, np.ndarray]
) -> None:
    shares = digit_shares(features["collapsed"][1])
    assert max(shares.values()) == 1.0
    assert shares[str(int(digits["y_test"][0]))] == 1.0


# The feature net and gan_quality


def test_feature_net_asset_is_small_and_accurate(digits: dict[str, np.ndarray]) -> None:
    assert feature_net.ASSET_PATH.stat().st_size < 1_000_000
    model = feature_net.load_feature_net()
    assert model is feature_net.load_feature_net()
    assert model.count_params() < 200_000
    assert model.get_layer("features").units == feature_net.FEATURE_DIM
    _, probs = feature_net.features_and_probs(digits["x_test"])
    assert probs.shape == (1000, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert feature_net.accuracy(probs, digits["y_test"]) > 0.93


def test_gan_quality_reports_every_figure(mnist_path: Path, digits: dict[str, np.ndarray]) -> None:
    with np.load(mnist_path, allow_pickle=False) as npz:
        generated = npz["x_test"][:300]  # uint8 (N, 28, 28) is accepted as well
    report = gan_quality(generated, digits["x_train"][:1000])
    assert set(report) == {"fid", "classifier_score", "digit_shares", "samples"}
    assert report["samples"] == 300
    assert report["fid"] < 10.0
    assert report["classifier_score"] > 7.0
    assert sum(report["digit_shares"].values()) == pytest.approx(1.0)
    flat = gan_quality(digits["x_test"][:300], digits["x_train"][:1000])
    assert flat["fid"] == pytest.approx(report["fid"], rel=1e-4)
