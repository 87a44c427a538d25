"""Hyperparameter sweeps (issue 15): Optuna searches a kind's parameters, each trial an ordinary
job. ``spec`` validates a sweep (light: the CLI imports it), ``driver`` stores and runs it, and
``study`` holds Optuna (imported only when a sweep is driven, never by the API at start)."""
