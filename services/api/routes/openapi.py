"""The API's OpenAPI document, public like the probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services.api import deps
from services.api.openapi import openapi_document

bp = Blueprint("openapi", __name__)


@bp.get("/v1/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of this deployment."""
    return jsonify(openapi_document(deps.settings()))
