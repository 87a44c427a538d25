"""The Flask HTTP API (v1). Never imports TensorFlow."""

from __future__ import annotations

from flask import Flask, redirect
from werkzeug.wrappers import Response

from services.api.auth import ApiRequest, register_auth
from services.api.errors import register_error_handlers
from services.api.event_wakeups import WakeUps
from services.api.json_provider import FiniteJSONProvider
from services.api.metrics import bp as metrics_bp
from services.api.metrics import register_request_metrics
from services.api.request_ids import register_request_ids
from services.api.routes import datasets, events, health, jobs, logs, removal, sweeps
from services.api.routes import openapi as openapi_route
from services.ui import bp as ui_bp
from shared.jobs import notify
from shared.queue import make_celery
from shared.settings import Settings, get_settings
from shared.storage import open_store


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API app; tests pass their own settings."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.request_class = ApiRequest  # links from GENTRAIN_PUBLIC_URL, never a client's Host
    # Werkzeug answers "//" in a path with a redirect in HTML; a 404 in JSON like any unknown path.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json = FiniteJSONProvider(app)
    app.extensions["gentrain.settings"] = settings
    app.extensions["gentrain.store"] = open_store(settings)
    app.extensions["gentrain.celery"] = make_celery(settings, name="gentrain-api")
    app.extensions["gentrain.wakeups"] = WakeUps(
        settings.database_url, settings.broker_url, settings.event_poll_seconds
    )
    notify.configure(settings.broker_url)  # changes made here wake streams in every process
    register_error_handlers(app)
    register_request_ids(app)  # first: a request refused by auth has its id too
    register_request_metrics(app)  # before auth: refused requests are counted too
    register_auth(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(datasets.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(sweeps.bp)
    app.register_blueprint(removal.bp)
    app.register_blueprint(logs.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(openapi_route.bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(ui_bp)

    @app.get("/")
    def home() -> Response:
        """The dashboard."""
        return redirect("/ui/", code=302)

    return app
