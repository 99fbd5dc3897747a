"""JSON encoding of job payloads, results and error records.

Payloads are JSON, never pickle: anyone able to write to Redis could
otherwise make workers run code (docs/design.md, "Payloads and safety"). Tuples become lists;
``NaN``/``Infinity`` are refused because they are not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scheduler.errors import PayloadError

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "decode_error",
    "decode_payload",
    "decode_result",
    "encode_error",
    "encode_meta",
    "encode_payload",
    "encode_result",
]

#: Default limit on the encoded size of ``[args, kwargs]``: 1 MiB.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_EMPTY = "[[],{}]"


def _too_large(size: int, max_bytes: int) -> str:
    raise PayloadError(f"payload is {size} bytes, over the limit of {max_bytes} bytes")


def _dumps(what: str, value: object) -> str:
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} is not JSON-serializable: {exc}") from None


def encode_payload(
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> str:
    """Encode ``[args, kwargs]`` as compact JSON text.

    Args:
        args: positional arguments (a tuple or list; other sequences are refused).
        kwargs: keyword arguments (``str`` keys) or ``None``.
        max_bytes: limit on the UTF-8 size of the result, in bytes.

    Raises:
        PayloadError: not JSON-serializable (including NaN/Infinity and
            non-``str`` keys), or larger than ``max_bytes``.
    """
    if not isinstance(args, tuple | list):
        raise PayloadError(f"args must be a tuple or list, got {type(args).__name__}")
    if not args and not kwargs:
        return _EMPTY if len(_EMPTY) <= max_bytes else _too_large(len(_EMPTY), max_bytes)
    kw = {} if kwargs is None else kwargs
    if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
        raise PayloadError("kwargs must be a dict with str keys")
    text = _dumps("payload", [list(args), kw])
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadError(f"payload is {size} bytes, over the limit of {max_bytes} bytes")
    return text


def decode_payload(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode a payload written by :func:`encode_payload`.

    Raises:
        PayloadError: the text is not a JSON ``[list, object]`` pair.
    """
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"payload is not valid JSON: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], list)
        or not isinstance(value[1], dict)
    ):
        raise PayloadError("payload is not a JSON [args, kwargs] pair")
    return value[0], value[1]


def encode_meta(meta: dict[str, Any] | None, max_bytes: int = 64 * 1024) -> str:
    """Encode job metadata (a JSON object with ``str`` keys); ``""`` for None/empty.

    Raises:
        PayloadError: not a dict with str keys, not JSON-serializable, or over
            ``max_bytes`` (default 64 KiB).
    """
    if not meta:
        return ""
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise PayloadError("meta must be a dict with str keys")
    text = _dumps("meta", meta)
    if len(text.encode("utf-8")) > max_bytes:
        raise PayloadError(f"meta is over the limit of {max_bytes} bytes")
    return text


def encode_result(value: object, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Encode a task's return value as JSON text.

    Raises:
        PayloadError: not JSON-serializable or larger than ``max_bytes``.
    """
    text = _dumps("result", value)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadError(f"result is {size} bytes, over the limit of {max_bytes} bytes")
    return text


def decode_result(text: str) -> Any:
    """Decode a result written by :func:`encode_result`."""
    return json.loads(text)


def encode_error(error: str, kind: str, traceback: str = "", attempt: int = 0) -> str:
    """Encode an error record: ``{"error", "type", "traceback", "attempt"}``.

    ``error`` and ``traceback`` are truncated to 16 KiB each so a runaway
    message cannot bloat the job record.
    """
    limit = 16 * 1024
    return _encoder.encode(
        {
            "error": error[:limit],
            "type": kind,
            "traceback": traceback[-limit:],
            "attempt": attempt,
        }
    )


def decode_error(text: str) -> dict[str, Any]:
    """Decode an error record; a malformed one is returned as ``{"error": text}``."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"error": text, "type": "", "traceback": "", "attempt": 0}
    if not isinstance(value, dict):
        return {"error": text, "type": "", "traceback": "", "attempt": 0}
    return value
