"""Reading TensorBoard event files back with TensorBoard's own reader (``EventAccumulator``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """What TensorBoard loads from one run folder: scalars and images by tag, in file order."""

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    # (step, width, height, PNG bytes) for each image
    images: dict[str, list[tuple[int, int, int, bytes]]] = field(default_factory=dict)

    def steps(self, tag: str) -> list[int]:
        """The steps ``tag`` was written at."""
        return [step for step, _ in self.scalars.get(tag, [])]


def read_run(folder: Path) -> Run:
    """Every scalar and image summary of the event files in ``folder`` (TF2 writes both as
    tensors, told apart by their plugin)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    run = Run()
    for tag in accumulator.Tags()["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        events = accumulator.Tensors(tag)
        if plugin == "scalars":
            run.scalars[tag] = [(e.step, float(make_ndarray(e.tensor_proto))) for e in events]
        elif plugin == "images":
            run.images[tag] = []
            for event in events:
                width, height, png, *_ = make_ndarray(event.tensor_proto)
                run.images[tag].append((event.step, int(width), int(height), bytes(png)))
    return run
