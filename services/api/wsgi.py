"""WSGI entry point for gunicorn; ``gentrain api`` runs it as it should be run.

By hand: ``gunicorn -k services.gunicorn_worker.ApiWorker services.api.wsgi:app`` (gevent, with the
header and idle deadlines; gunicorn's default sync worker is held by one slow client). Keys do
not depend on how it is started: a request that does not come from loopback to loopback without
a proxy header needs one (README, *Keys and owners*).
"""

from services.api import create_app

app = create_app()
