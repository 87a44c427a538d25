"""The web dashboard under ``/ui/``: pages rendered on the server (Jinja) from the same reads and
parameter definitions as the API, with a little JavaScript for live updates (the event streams)
and charts. Never imports TensorFlow."""

from services.ui import (  # noqa: F401 - each module adds its pages to the blueprint
    context,
    pages_compare,
    pages_datasets,
    pages_job,
    pages_jobs,
    pages_new,
    pages_removal,
    pages_sweeps,
    signin,
)
from services.ui.blueprint import bp

__all__ = ["bp"]
