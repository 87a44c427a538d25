"""Image and generator quality metrics in NumPy: PSNR, SSIM, and FID / classifier score / digit
shares in the space of the pinned MNIST feature net (``workers.engine.feature_net``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workers.engine.feature_net import NUM_CLASSES, features_and_probs

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_CHUNK = 2000
_EPS = 1e-12


def psnr_db(mse: float) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] with mean squared error ``mse``."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of ``size`` taps; its outer product is the 2-D SSIM window."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filtering of a batch (N, H, W) → (N, H-k+1, W-k+1)."""
    k = len(g)
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=2) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g


def _as_batch(images: np.ndarray) -> np.ndarray:
    """Images (N, 784) or (N, 28, 28) (or one 28×28 image) as float64 (N, 28, 28)."""
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 2 and array.shape == (28, 28):
        array = array[None]
    return array.reshape(len(array), 28, 28)


def ssim_per_image(
    a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA
) -> np.ndarray:
    """SSIM of each image pair (Wang et al., Gaussian window, valid positions, data range 1)."""
    x, y = _as_batch(a), _as_batch(b)
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {x.shape} vs {y.shape}")
    g = _gaussian_window(window, sigma)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), _SSIM_CHUNK):
        xs, ys = x[start : start + _SSIM_CHUNK], y[start : start + _SSIM_CHUNK]
        mu_x, mu_y = _filter_valid(xs, g), _filter_valid(ys, g)
        mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
        var_x = _filter_valid(xs * xs, g) - mu_xx
        var_y = _filter_valid(ys * ys, g) - mu_yy
        cov = _filter_valid(xs * ys, g) - mu_xy
        ssim_map = ((2.0 * mu_xy + c1) * (2.0 * cov + c2)) / (
            (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
        )
        out[start : start + len(xs)] = ssim_map.mean(axis=(1, 2))
    return out


def ssim(
    a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA
) -> float:
    """Mean SSIM over a batch of 28×28 images in [0, 1] (11×11 Gaussian window, σ = 1.5)."""
    return float(ssim_per_image(a, b, window, sigma).mean())


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    root1 = _sqrtm_psd(sigma1)
    product = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2.0)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff) + float(np.trace(sigma1) + np.trace(sigma2)) - 2.0 * trace_sqrt
    return max(value, 0.0)


def _gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a feature set (N, D) in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least two feature vectors (N, D), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    mu1, sigma1 = _gaussian_fit(real_features)
    mu2, sigma2 = _gaussian_fit(fake_features)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def classifier_score(probs: np.ndarray) -> float:
    """Inception-score analogue exp(E_x[KL(p(y|x) || p(y))]): 1 (one class) up to 10."""
    p = np.asarray(probs, dtype=np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + _EPS) - np.log(marginal + _EPS)), axis=1)
    return float(np.exp(kl.mean()))


def digit_shares(probs: np.ndarray) -> dict[str, float]:
    """Share of images predicted as each digit "0".."9" (argmax of the probabilities)."""
    p = np.asarray(probs)
    counts = np.bincount(np.argmax(p, axis=1), minlength=NUM_CLASSES)
    total = max(len(p), 1)
    return {str(digit): float(counts[digit] / total) for digit in range(NUM_CLASSES)}


def conditional_accuracy(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Share of images the feature net assigns the digit they were drawn for: overall, and by
    digit "0".."9" (digits never asked for are left out)."""
    predicted = np.argmax(np.asarray(probs), axis=1)
    asked = np.asarray(labels)
    hits = predicted == asked
    by_digit = {
        str(digit): float(hits[asked == digit].mean())
        for digit in range(NUM_CLASSES)
        if np.any(asked == digit)
    }
    return {"conditional_accuracy": float(hits.mean()), "conditional_accuracy_by_digit": by_digit}


def gan_quality(
    generated: np.ndarray, real: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, Any]:
    """FID against ``real``, classifier score and digit shares of ``generated`` (feature net);
    with the ``labels`` they were drawn for, how often the feature net agrees with them."""
    fake_features, fake_probs = features_and_probs(generated)
    real_features, _ = features_and_probs(real)
    results = {
        "fid": fid(real_features, fake_features),
        "classifier_score": classifier_score(fake_probs),
        "digit_shares": digit_shares(fake_probs),
        "samples": len(fake_features),
    }
    if labels is not None:
        results.update(conditional_accuracy(fake_probs, labels))
    return results
