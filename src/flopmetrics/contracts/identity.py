"""A configuration's identity in a row: the hash of the parameters of the job that made it."""

from __future__ import annotations

import hashlib
import json


def config_hash(params: dict) -> str:
    """Stable short hash of a job's parameters (key order does not matter)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def differences(found: dict, expected: dict, prefix: str = "") -> list[str]:
    """``key: found -> expected`` for every (nested) key whose values differ."""
    out = []
    for key in sorted(set(found) | set(expected), key=str):
        a, b = found.get(key, "<absent>"), expected.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the file, {b!r} configured")
    return out
