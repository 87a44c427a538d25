"""Celery workers: the app, thin tasks, the job runner and the Keras training engine."""
