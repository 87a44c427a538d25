"""WSGI entry point for gunicorn; ``gentrain api`` runs it as it should be run.

By hand: ``gunicorn -k services.gunicorn_worker.ApiWorker services.api.wsgi:app`` (gevent, with the
header and idle deadlines; gunicorn's default sync worker is held by one slow client). Keys do
not depend on how it is started: a request that does not come from loopback to loopback without
a proxy header needs one (README, *Keys and owners*).
"""

from services.api import create_app
from shared.log_format import configure
from shared.settings import get_settings

if get_settings().log_format == "json":
    # The app's records as JSON lines like gunicorn's (services.gunicorn_logging), each with
    # the id of the request it was logged in.
    configure("api", "json")
app = create_app()
