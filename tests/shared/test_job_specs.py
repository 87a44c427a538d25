import pytest

from shared.job_specs import SpecError, validate_sample_params, validate_training_spec


def test_defaults_are_the_seeds() -> None:
    params = validate_training_spec("autoencoder", {})
    assert params["epochs"] == 50
    assert params["batch_size"] == 256
    assert params["encoding_dim"] == 32
    assert params["learning_rate"] == pytest.approx(0.001)


def test_given_values_override_defaults_and_ints_become_floats() -> None:
    params = validate_training_spec("autoencoder", {"epochs": 2, "learning_rate": 1})
    assert params["epochs"] == 2
    assert params["learning_rate"] == 1.0 and isinstance(params["learning_rate"], float)


@pytest.mark.parametrize(
    ("kind", "params", "field", "message"),
    [
        ("flow", {}, "kind", "unknown kind 'flow'"),
        (None, {}, "kind", "unknown kind"),
        ("autoencoder", {"epoch": 2}, "params.epoch", "unknown parameter 'epoch'"),
        ("autoencoder", {"epochs": 0}, "params.epochs", "at least 1"),
        ("autoencoder", {"epochs": 10**6}, "params.epochs", "at most 1000"),
        ("autoencoder", {"epochs": 2.5}, "params.epochs", "integer"),
        ("autoencoder", {"epochs": True}, "params.epochs", "integer"),
        ("autoencoder", {"learning_rate": "fast"}, "params.learning_rate", "number"),
        ("autoencoder", {"shuffle": 1}, "params.shuffle", "true or false"),
        ("autoencoder", [1, 2], "params", "must be an object"),
    ],
)
def test_bad_specs_name_the_field(kind: object, params: object, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_training_spec(kind, params)
    assert caught.value.field == field
    assert message in caught.value.message


def test_sample_count_is_bounded() -> None:
    assert validate_sample_params(None)["count"] == 16
    with pytest.raises(SpecError) as caught:
        validate_sample_params({"count": 100_000})
    assert caught.value.field == "params.count"
