"""JSON numbers that every parser accepts: non-finite floats (inf, NaN) become ``null``.

Python's ``json`` writes them as the bare tokens ``Infinity`` and ``NaN``, which strict parsers
(browsers included) reject and PostgreSQL refuses in a JSON column. Values a job stores pass
through ``finite_json``, which names every value it replaced, so a result reads
``{"test_psnr_db": null, "non_finite": {"test_psnr_db": "inf"}}`` rather than losing the reason.
"""

from __future__ import annotations

import math
from typing import Any

NON_FINITE_KEY = "non_finite"


def _clean(value: Any, path: str, replaced: dict[str, str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        replaced[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {
            key: _clean(item, f"{path}.{key}" if path else str(key), replaced)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(item, f"{path}[{i}]", replaced) for i, item in enumerate(value)]
    return value


def finite_json(value: Any) -> tuple[Any, dict[str, str]]:
    """``value`` with non-finite floats as None, and what was replaced, by path."""
    replaced: dict[str, str] = {}
    return _clean(value, "", replaced), replaced


def finite_record(values: dict[str, Any]) -> dict[str, Any]:
    """A dict (results, metrics) made JSON-safe, with a ``non_finite`` entry naming the
    replaced values and what they were."""
    clean, replaced = finite_json(values)
    if replaced:
        clean[NON_FINITE_KEY] = replaced
    return dict(clean)
