"""The GAN's options and a conditional GAN's sampling digits, as the definitions check them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.job_specs import SpecError, validate_sample_params, validate_training_spec
from shared.kinds import KIND_SPECS, GanSampleParams, digit_rows, sample_param_models

CONDITIONAL = {"conditional": True}


def test_the_options_default_to_the_seeds() -> None:
    params = validate_training_spec("gan", {})
    assert (params["architecture"], params["loss"], params["conditional"]) == ("seed", "bce", False)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"architecture": "big"}, "params.architecture", "must be one of 'seed' or 'dcgan'"),
        ({"loss": "mse"}, "params.loss", "must be one of 'bce' or 'hinge'"),
        ({"conditional": "yes"}, "params.conditional", "must be true or false"),
        ({"loss": "hinge", "label_smoothing": 0.2}, "params.label_smoothing", "not hinge"),
    ],
)
def test_bad_options_name_their_field(params: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_training_spec("gan", params)
    assert caught.value.field == field and message in caught.value.message


def test_conditional_asks_for_labels() -> None:
    spec = KIND_SPECS["gan"]
    assert spec.labels_asked_by({"conditional": True}) == "conditional"
    assert spec.labels_asked_by({"conditional": False}) is None
    assert spec.labels_asked_by({}) is None
    assert KIND_SPECS["autoencoder"].labels_asked_by({"conditional": True}) is None


def test_digits() -> None:
    assert validate_sample_params({"digits": [7, 7, 0]}, "gan", CONDITIONAL)["digits"] == [7, 7, 0]
    assert validate_sample_params({"digits": "all"}, "gan", CONDITIONAL)["digits"] == "all"
    # Unknown training params (no context): the shape alone is checked.
    assert validate_sample_params({"digits": [1]}, "gan")["digits"] == [1]
    assert digit_rows("all") == list(range(10))
    assert digit_rows([3, 1]) == [3, 1] and digit_rows(None) is None
    assert sample_param_models()[1] is GanSampleParams


@pytest.mark.parametrize(
    ("params", "trained_with", "field", "message"),
    [
        ({"digits": [7]}, {"conditional": False}, "params.digits", "needs a conditional GAN"),
        ({"digits": [7]}, {}, "params.digits", "needs a conditional GAN"),
        ({"digits": [10]}, CONDITIONAL, "params.digits", "list of digits 0-9"),
        ({"digits": [True]}, CONDITIONAL, "params.digits", "list of digits 0-9"),
        ({"digits": "every"}, CONDITIONAL, "params.digits", 'or "all"'),
        ({"digits": 3}, CONDITIONAL, "params.digits", 'or "all"'),
        ({"digits": []}, CONDITIONAL, "params.digits", "1 to 20 digits"),
        ({"digits": [1] * 21}, CONDITIONAL, "params.digits", "1 to 20 digits"),
        ({"digits": "all", "count": 103}, CONDITIONAL, "params.count", "10 rows of 103"),
    ],
)
def test_bad_digits_name_their_field(
    params: dict[str, Any], trained_with: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        validate_sample_params(params, "gan", trained_with)
    assert caught.value.field == field and message in caught.value.message, caught.value.message
