"""The API's JSON: key order kept, and never a bare ``Infinity`` or ``NaN`` token."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

from shared.finite_numbers import finite_json


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, writing any non-finite float as ``null``.

    Values the service stores are made finite when written (``shared.finite_numbers``); this
    is the last guard, and costs nothing on the usual answer: only one that fails strict
    encoding is walked and cleaned."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:
            return json.dumps(finite_json(obj)[0], allow_nan=False, **kwargs)
