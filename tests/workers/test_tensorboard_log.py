"""A training job's TensorBoard event file, written by the engine on real digits and read back
with TensorBoard's own reader: every metric per epoch, the sample grids as images, uploads as
the job runs, and a resumed job's attempts merged into one run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.job_specs import validate_training_spec

pytest.importorskip("tensorflow")
pytest.importorskip("tensorboard")

from tests.workers.tensorboard_events import read_run  # noqa: E402
from tests.workers.test_engine import FIXTURE, MemoryReporter  # noqa: E402
from workers.engine.data import load_arrays  # noqa: E402
from workers.engine.training import train  # noqa: E402


class UploadLog(MemoryReporter):
    """A MemoryReporter that also keeps every upload of a TensorBoard file as it was then."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(stop_after)
        self.uploads: list[tuple[str, int, bytes]] = []  # name, epochs recorded by then, bytes

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        super().save_file(name, path, content_type)
        if name.startswith("tensorboard/"):
            self.uploads.append((name, len(self.epochs), path.read_bytes()))


def board_files(reporter: MemoryReporter, folder: Path) -> list[str]:
    """Write the reporter's TensorBoard artifacts into ``folder`` as a download would."""
    names = sorted(n for n in reporter.files if n.startswith("tensorboard/"))
    for name in names:
        (folder / name.rsplit("/", 1)[-1]).write_bytes(reporter.files[name])
    return names


def test_every_epoch_and_grid_is_written_and_uploaded_as_it_grows(tmp_path: Path) -> None:
    arrays = load_arrays(FIXTURE, max_train_images=512)
    params = validate_training_spec("autoencoder", {"epochs": 3, "sample_every": 2})
    reporter = UploadLog()
    train("autoencoder", arrays, params, reporter)

    [name] = board_files(reporter, tmp_path)
    assert re.fullmatch(
        r"tensorboard/events\.out\.tfevents\.\d{10}\.attempt-1\.[0-9a-f]{6}\.v2", name
    )
    run = read_run(tmp_path)
    assert set(run.scalars) == {"loss", "val_loss"}
    for tag in ("loss", "val_loss"):
        expected = [(step, pytest.approx(values[tag])) for step, values, _ in reporter.epochs]
        assert run.scalars[tag] == expected
    # The grid of epoch 2 and the final one (epoch 3), as the job stored them.
    assert [(step, w, h) for step, w, h, _ in run.images["samples"]] == [
        (2, 560, 112),
        (3, 560, 112),
    ]
    # The very grids the job stored.
    assert run.images["samples"][0][3] == reporter.files["samples/epoch-000002.png"]
    assert run.images["samples"][1][3] == reporter.files["samples/reconstructions.png"]

    # Uploaded at each epoch's end (epoch 2 with its grid), then once more for the final grid;
    # each upload is a larger file than the one before (none when nothing changed).
    assert [epochs for _, epochs, _ in reporter.uploads] == [1, 2, 3, 3]
    sizes = [len(data) for _, _, data in reporter.uploads]
    assert sizes == sorted(set(sizes))
    first = tmp_path / "first"
    first.mkdir()
    (first / "events.out.tfevents.1").write_bytes(reporter.uploads[0][2])
    assert read_run(first).steps("loss") == [1]  # readable as soon as epoch 1 ended


def test_a_resumed_job_writes_its_own_file_and_both_read_as_one_run(tmp_path: Path) -> None:
    arrays = load_arrays(FIXTURE, max_train_images=512)
    params = validate_training_spec("autoencoder", {"epochs": 4})
    reporter = MemoryReporter(stop_after=2)
    assert train("autoencoder", arrays, params, reporter).stopped
    # The next attempt of the same job (same artifacts), no longer asked to stop.
    reporter.stop_after, reporter.attempt = None, 2
    assert not train("autoencoder", arrays, params, reporter).stopped

    names = board_files(reporter, tmp_path)
    assert [n.split(".")[4] for n in names] == ["attempt-1", "attempt-2"]
    run = read_run(tmp_path)
    # Epoch 2 again from the checkpoint the second attempt resumed from (the first may have
    # died before uploading it): a point repeated, never one missing.
    assert run.steps("loss") == [1, 2, 2, 3, 4]
    by_step = dict(run.scalars["loss"])
    assert [by_step[s] for s in (1, 2, 3, 4)] == pytest.approx(
        [values["loss"] for _, values, _ in reporter.epochs]
    )
