"""One definition per model kind: its parameters (pydantic models), needs and default grid.

The API's validation, the OpenAPI schemas and the CLI all read ``KIND_SPECS`` when called, and
the engine keys its Keras side by the same names. Defaults are the seed lecture's. Never imports
TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class RuleError(ValueError):
    """A cross-field rule broken; names the parameter to blame."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


# Per-job output bounds (issue 10): a job writes at most this many checkpoints and metric rows
# (one per epoch or block of steps) and this many intermediate sample grids, so the intervals
# between them are bounded below by the run's length.
MAX_CHECKPOINTS_PER_JOB = 1000
MAX_GRIDS_PER_JOB = 100
# Quality evaluation fits a Gaussian to features of generated and held-out images
# (workers/engine/quality.py): it needs at least two of each.
QUALITY_MIN_SAMPLES = 2


def _ceil_div(total: int, parts: int) -> int:
    return -(-total // parts)


def check_sample_every(sample_every: int, length: int, unit: str) -> None:
    """RuleError unless ``sample_every`` is 0 or leaves at most MAX_GRIDS_PER_JOB grids in a run
    of ``length`` epochs or steps."""
    least = _ceil_div(length, MAX_GRIDS_PER_JOB)
    if sample_every and sample_every < least:
        raise RuleError(
            "sample_every",
            f"sample_every must be 0 or at least {least} for {length} {unit} "
            f"(at most {MAX_GRIDS_PER_JOB} grids a job)",
        )


class Params(BaseModel):
    """Base of every parameter model: closed, strictly typed, finite numbers."""

    # strict: true is not an integer and 1 is not a boolean (an int is still a valid float).
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class CommonParams(Params):
    """Parameters every trainable kind takes."""

    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed")
    max_train_images: int = Field(
        0, ge=0, le=10_000_000, description="use only the first N images (0: all)"
    )
    mixed_precision: bool = Field(
        False, description="bfloat16 on CPUs, float16 on GPUs (see docs/engine-benchmarks.md)"
    )
    max_runtime_seconds: int = Field(
        0, ge=0, le=10**8, description="stop and fail after this long (0: the service default)"
    )


class ClassifierParams(CommonParams):
    """Parameters of a classifier job."""

    epochs: int = Field(2, ge=1, le=1000, description="passes over the training split")
    batch_size: int = Field(64, ge=1, le=4096, description="images per batch, per replica")
    learning_rate: float = Field(0.001, ge=1e-6, le=1.0, description="RMSprop learning rate")
    hidden_units: int = Field(
        64, ge=1, le=4096, description="units in each of the two hidden layers"
    )
    validation_split: float = Field(
        0.2, ge=0.0, le=0.5, description="share of training images held for validation"
    )
    shuffle: bool = Field(True, description="shuffle the training split each epoch")
    sample_every: int = Field(
        0, ge=0, le=1000, description="save a labelled grid every K epochs (0: at the end)"
    )

    @model_validator(mode="after")
    def _bounded_output(self) -> ClassifierParams:
        """At most MAX_GRIDS_PER_JOB intermediate grids."""
        check_sample_every(self.sample_every, self.epochs, "epochs")
        return self


class AutoencoderParams(CommonParams):
    """Parameters of an autoencoder job."""

    epochs: int = Field(50, ge=1, le=1000, description="passes over the training split")
    batch_size: int = Field(256, ge=1, le=4096, description="images per batch, per replica")
    learning_rate: float = Field(0.001, ge=1e-6, le=1.0, description="Adam learning rate")
    encoding_dim: int = Field(32, ge=1, le=784, description="size of the code layer")
    architecture: Literal["dense", "conv"] = Field(
        "dense",
        description="dense: the seed's 784-code-784; conv: strided convolutions down to the "
        "same code and transposed ones back up",
    )
    shuffle: bool = Field(True, description="shuffle the training split each epoch")
    sample_every: int = Field(
        0, ge=0, le=1000, description="save a sample grid every K epochs (0: at the end)"
    )

    @model_validator(mode="after")
    def _bounded_output(self) -> AutoencoderParams:
        """At most MAX_GRIDS_PER_JOB intermediate grids."""
        check_sample_every(self.sample_every, self.epochs, "epochs")
        return self


class DenoiserParams(AutoencoderParams):
    """Parameters of a denoiser job: the autoencoder's, plus the noise."""

    noise_factor: float = Field(
        0.55, ge=0.0, le=2.0, description="standard deviation of the added Gaussian noise"
    )
    # The seed never clips: it trains and evaluates on unclipped noisy digits.
    clip: bool = Field(False, description="clip noisy images to [0, 1] (the seed does not)")


# Gaussians in a VAE's fitted prior unless asked otherwise: one a digit.
_DEFAULT_COMPONENTS = 10


class VaeParams(CommonParams):
    """Parameters of a variational autoencoder job (keras-io's convolutional VAE)."""

    epochs: int = Field(50, ge=1, le=1000, description="passes over the training split")
    batch_size: int = Field(128, ge=1, le=4096, description="images per batch, per replica")
    learning_rate: float = Field(0.001, ge=1e-6, le=1.0, description="Adam learning rate")
    latent_dim: int = Field(16, ge=1, le=512, description="size of the latent code")
    beta: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="weight of the KL term in the loss (1: the negative ELBO)",
    )
    prior: Literal["standard", "mixture"] = Field(
        "standard",
        description="where sampled codes come from: standard: N(0, I), the VAE's own prior; "
        "mixture: a Gaussian mixture fitted to the training digits' codes after training "
        "(Ghosh et al.'s ex-post density estimation; far sharper digits, see "
        "docs/engine-benchmarks.md), kept in the exported model",
    )
    prior_components: int = Field(
        _DEFAULT_COMPONENTS,
        ge=1,
        le=100,
        description="Gaussians in the fitted mixture (prior mixture only)",
    )
    shuffle: bool = Field(True, description="shuffle the training split each epoch")
    sample_every: int = Field(
        0, ge=0, le=1000, description="save a grid from the prior every K epochs (0: at the end)"
    )
    quality_samples: int = Field(
        2000,
        ge=0,
        le=20_000,
        description=f"images drawn from the prior and scored at the end (0: none, else at least "
        f"{QUALITY_MIN_SAMPLES})",
    )

    @model_validator(mode="after")
    def _bounded_output(self) -> VaeParams:
        """At most MAX_GRIDS_PER_JOB intermediate grids; quality scored on enough samples or
        none; a number of mixture components only for the mixture prior."""
        check_sample_every(self.sample_every, self.epochs, "epochs")
        if 0 < self.quality_samples < QUALITY_MIN_SAMPLES:
            raise RuleError(
                "quality_samples",
                f"quality_samples must be 0 or at least {QUALITY_MIN_SAMPLES}",
            )
        if self.prior != "mixture" and self.prior_components != _DEFAULT_COMPONENTS:
            raise RuleError(
                "prior_components", "prior_components applies to prior mixture, not standard"
            )
        return self


class GanParams(CommonParams):
    """Parameters of a GAN job; steps must be a multiple of steps_per_epoch (capped at steps)."""

    steps: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="training steps (one discriminator + one generator update)",
    )
    batch_size: int = Field(128, ge=2, le=4096, description="real images per step, per replica")
    learning_rate: float = Field(
        0.0004, ge=1e-6, le=1.0, description="Adam learning rate of both networks"
    )
    latent_dim: int = Field(32, ge=1, le=512, description="size of the latent vector")
    steps_per_epoch: int = Field(
        100, ge=1, le=100_000, description="steps between metrics and checkpoints"
    )
    sample_every: int = Field(
        500, ge=0, le=1_000_000, description="save a sample grid every K steps (0: at the end)"
    )
    label_smoothing: float = Field(0.0, ge=0.0, le=0.5, description="real label is 1 minus this")
    ema: float = Field(
        0.0,
        ge=0.0,
        le=0.9999,
        description="decay of a moving average of the generator's weights (0: off; 0.999 with "
        "architecture dcgan is the best measured, see docs/engine-benchmarks.md); "
        "grids, quality and the exported generator then use the average",
    )
    architecture: Literal["seed", "dcgan"] = Field(
        "seed",
        description="seed: the lecture's networks; dcgan: strided convolutions with BatchNorm "
        "and LeakyReLU in both networks and Adam with beta_1 0.5 (the DCGAN paper's recipe)",
    )
    loss: Literal["bce", "hinge"] = Field(
        "bce",
        description="bce: binary cross-entropy on a sigmoid output (the seed's); hinge: the "
        "discriminator outputs a score, trained with the hinge loss",
    )
    conditional: bool = Field(
        False,
        description="feed the digit's label to both networks (the dataset needs y_train); "
        "the exported generator takes (latent, label) and sampling jobs can ask for digits",
    )
    quality_samples: int = Field(
        2000,
        ge=0,
        le=20_000,
        description=f"generated images scored at the end (0: none, else at least "
        f"{QUALITY_MIN_SAMPLES})",
    )

    @model_validator(mode="after")
    def _whole_blocks(self) -> GanParams:
        """steps_per_epoch is capped at steps, and steps come in whole blocks of it; at most
        MAX_CHECKPOINTS_PER_JOB blocks and MAX_GRIDS_PER_JOB intermediate grids a job; quality
        is scored on enough samples or none."""
        self.steps_per_epoch = min(self.steps_per_epoch, self.steps)
        least = _ceil_div(self.steps, MAX_CHECKPOINTS_PER_JOB)
        if self.steps_per_epoch < least:
            raise RuleError(
                "steps_per_epoch",
                f"steps_per_epoch must be at least {least} for {self.steps} steps "
                f"(at most {MAX_CHECKPOINTS_PER_JOB} checkpoints a job)",
            )
        check_sample_every(self.sample_every, self.steps, "steps")
        if 0 < self.quality_samples < QUALITY_MIN_SAMPLES:
            raise RuleError(
                "quality_samples",
                f"quality_samples must be 0 or at least {QUALITY_MIN_SAMPLES}",
            )
        if self.steps % self.steps_per_epoch:
            raise RuleError(
                "steps_per_epoch",
                f"steps ({self.steps}) must be a multiple of steps_per_epoch "
                f"({self.steps_per_epoch})",
            )
        if self.label_smoothing and self.loss != "bce":
            raise RuleError(
                "label_smoothing", f"label_smoothing applies to the bce loss, not {self.loss}"
            )
        return self


class SampleParams(Params):
    """Parameters of a sampling job."""

    count: int = Field(16, ge=1, le=1024, description="images in the grid")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed for the images drawn")


# Images a sampling job draws at most (``count``, or ``count`` per row of a conditional GAN).
MAX_SAMPLE_IMAGES = 1024
DIGITS = 10
# A sampling parameter's schema key naming the training parameter it needs set.
NEEDS_KEY = "x-needs-param"
Digit = Annotated[int, Field(ge=0, le=DIGITS - 1)]


class GanSampleParams(SampleParams):
    """Parameters of a sampling job of a GAN; ``digits`` only for a conditional one."""

    digits: list[Digit] | Literal["all"] | None = Field(
        None,
        description="conditional GANs only: one row of count samples per digit listed (0-9), "
        'or "all" for one row per digit 0-9; null: count samples, digits 0-9 in turn',
        # Forms offer it only for models trained with this parameter set.
        json_schema_extra={NEEDS_KEY: "conditional"},
    )

    @field_validator("digits", mode="before")
    @classmethod
    def _digits_shape(cls, value: Any) -> Any:
        """One message for every wrong shape (not one per member of the union)."""
        if value is None or value == "all":
            return value
        if not isinstance(value, list) or not all(
            type(digit) is int and 0 <= digit < DIGITS for digit in value
        ):
            raise RuleError("digits", 'digits must be a list of digits 0-9, or "all"')
        return value

    @model_validator(mode="after")
    def _digits_fit(self, info: ValidationInfo) -> GanSampleParams:
        """A list of 1-20 digits whose rows hold at most MAX_SAMPLE_IMAGES images; none for an
        unconditional model (when the training job's params are in the validation context)."""
        rows = self.digit_rows()
        if rows is not None:
            if not 1 <= len(rows) <= 2 * DIGITS:
                raise RuleError("digits", f'digits must list 1 to {2 * DIGITS} digits, or "all"')
            if len(rows) * self.count > MAX_SAMPLE_IMAGES:
                raise RuleError(
                    "count",
                    f"count is per row with digits: {len(rows)} rows of {self.count} is more "
                    f"than {MAX_SAMPLE_IMAGES} images",
                )
        trained_with = (info.context or {}).get("trained_with")
        if rows is not None and trained_with is not None and not trained_with.get("conditional"):
            raise RuleError("digits", "digits needs a conditional GAN (trained with conditional)")
        return self

    def digit_rows(self) -> list[int] | None:
        """The digit of each row of the grid, or None for a plain grid."""
        return digit_rows(self.digits)


def digit_rows(digits: list[int] | str | None) -> list[int] | None:
    """A conditional GAN's sampling ``digits`` as the digit of each row (None: no rows)."""
    if digits == "all":
        return list(range(DIGITS))
    return None if digits is None else [int(digit) for digit in digits]


@dataclass(frozen=True)
class KindSpec:
    """Everything about a model kind that is not Keras: parameters, needs, outputs."""

    name: str
    description: str
    params: type[CommonParams]
    # The grid saved when training ends.
    final_grid: str
    sample_params: type[Params] = SampleParams
    needs_labels: bool = False
    # Sampling draws images from the training job's dataset (all but generators).
    sampling_needs_dataset: bool = True
    # Boolean parameters that, set, make a job of the kind need labels (y_train).
    label_params: tuple[str, ...] = ()

    def labels_asked_by(self, params: dict[str, Any]) -> str | None:
        """The parameter that makes a job with ``params`` need labels, if one does."""
        return next((name for name in self.label_params if params.get(name)), None)


# The model kinds, in the order they are listed everywhere.
KIND_SPECS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(
            "classifier",
            "the seed's functional-API MLP classifier (RMSprop, accuracy)",
            ClassifierParams,
            "samples/predictions.png",
            needs_labels=True,
        ),
        KindSpec(
            "autoencoder",
            "the seed's dense 784-32-784 autoencoder (Adam, MSE)",
            AutoencoderParams,
            "samples/reconstructions.png",
        ),
        KindSpec(
            "denoiser",
            "the autoencoder's network trained on images with Gaussian noise x 0.55",
            DenoiserParams,
            "samples/denoised.png",
        ),
        KindSpec(
            "gan",
            "the seed's DCGAN-style GAN, trained in blocks of steps",
            GanParams,
            "samples/generated.png",
            sample_params=GanSampleParams,
            sampling_needs_dataset=False,
            label_params=("conditional",),
        ),
        KindSpec(
            "vae",
            "a convolutional variational autoencoder (keras-io's VAE): samples from the prior, "
            "interpolation between held-out digits",
            VaeParams,
            "samples/generated.png",
        ),
    )
}


def params_json_schema(
    model: type[BaseModel], caps: dict[str, int] | None = None
) -> dict[str, Any]:
    """``model``'s JSON schema as the API documents it: a closed object of optional, described
    parameters with defaults and bounds, no titles; ``caps`` lower a parameter's maximum."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise ValueError(f"{model.__name__}: nested models and enums are not supported")
    properties: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        prop = {key: value for key, value in prop.items() if key != "title"}
        if caps and name in caps:
            prop["maximum"] = min(prop.get("maximum", caps[name]), caps[name])
        properties[name] = prop
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if schema.get("description"):
        result["description"] = schema["description"]
    return {**result, "additionalProperties": False}


# The kind of a sampling job (it draws from a trained model of one of the kinds above).
SAMPLE_KIND = "sample"


def sample_param_models() -> list[type[Params]]:
    """Every sampling parameter model: the common one, then the kinds' own, each once."""
    models: list[type[Params]] = [SampleParams]
    models.extend(spec.sample_params for spec in KIND_SPECS.values())
    return list(dict.fromkeys(models))


def job_kinds() -> list[str]:
    """Every job kind, from the registry as it is now: the trainable ones, then sampling."""
    return [*KIND_SPECS, SAMPLE_KIND]
