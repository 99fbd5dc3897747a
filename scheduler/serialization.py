"""JSON encoding of job payloads, results and error records.

Payloads are JSON, never pickle: anyone able to write to Redis could
otherwise make workers run code (docs/design.md, "Payloads and safety").

What goes in comes back exactly, or is refused with :class:`PayloadError`
(docs/design.md, "Limits"): tuples become lists (the one documented change);
``NaN``/``Infinity``, object keys that are not ``str`` (at any depth: JSON would
turn ``{1: "a"}`` into ``{"1": "a"}``), nesting deeper than
:data:`scheduler.defaults.MAX_PAYLOAD_DEPTH`, and text that is not valid
Unicode (lone surrogates, e.g. from ``os.fsdecode(b"\\xff")``, cannot be stored
as UTF-8) are refused.

An app may opt in to more types with a :class:`scheduler.codec.JSONCodec` (tagged values:
``datetime``, ``UUID``, ``Decimal``, dataclasses, ...); what it does not
register is never decoded into anything but JSON values.

Error records never fail to encode: what a task raised is recorded whatever
its text, lone surrogates escaped as ``\\udcff`` and the record marked
``"escaped": true``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scheduler import defaults
from scheduler.errors import PayloadError

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_DEPTH",
    "check_json_value",
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

#: Deepest nesting of lists/objects accepted (see :data:`scheduler.defaults.MAX_PAYLOAD_DEPTH`).
MAX_DEPTH = defaults.MAX_PAYLOAD_DEPTH

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

_EMPTY = "[[],{}]"
_NULL = "null"
_SCALARS = frozenset({str, int, float, bool, type(None)})
_ERROR_LIMIT = 16 * 1024


def _too_large(size: int, max_bytes: int) -> str:
    raise PayloadError(f"payload is {size} bytes, over the limit of {max_bytes} bytes")


def _walk(what: str, value: object, depth: int) -> None:
    """Refuse non-``str`` object keys and nesting beyond :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise PayloadError(f"{what} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(f"{what} has an object key that is not a str: {key!r}")
            if type(item) not in _SCALARS:
                _walk(what, item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            if type(item) not in _SCALARS:
                _walk(what, item, depth + 1)


def check_json_value(what: str, value: object, depth: int = 1) -> None:
    """Check what JSON encoding would silently change or cannot read back.

    Args:
        what: what the value is, for the message ("payload", "result", ...).
        value: the value; scalars pass at once.
        depth: the nesting level of ``value`` itself (1 for a top-level list).

    Raises:
        PayloadError: an object key that is not a ``str`` (at any depth), or
            nesting deeper than :data:`MAX_DEPTH` levels.
    """
    if type(value) not in _SCALARS:
        _walk(what, value, depth)


def _dumps(what: str, value: object) -> str:
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} is not JSON-serializable: {exc}") from None


def _utf8_size(what: str, text: str) -> int:
    """UTF-8 size of ``text`` in bytes; refuses text Redis cannot store as UTF-8."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        raise PayloadError(
            f"{what} holds text that is not valid Unicode (lone surrogate {bad})"
        ) from None


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
        PayloadError: not JSON-serializable (including NaN/Infinity), an
            object key that is not a ``str`` at any depth, nesting deeper than
            :data:`MAX_DEPTH`, text that is not valid Unicode (lone
            surrogates), or larger than ``max_bytes``.
    """
    if not isinstance(args, tuple | list):
        raise PayloadError(f"args must be a tuple or list, got {type(args).__name__}")
    if not args and not kwargs:
        return _EMPTY if len(_EMPTY) <= max_bytes else _too_large(len(_EMPTY), max_bytes)
    kw = {} if kwargs is None else kwargs
    if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
        raise PayloadError("kwargs must be a dict with str keys")
    # The payload [args, kwargs] is level 1; args and kwargs are level 2.
    _walk("payload", args, 2)
    _walk("payload", kw, 2)
    text = _dumps("payload", [list(args), kw])
    size = _utf8_size("payload", text)
    if size > max_bytes:
        raise PayloadError(f"payload is {size} bytes, over the limit of {max_bytes} bytes")
    return text


def decode_payload(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode a payload written by :func:`encode_payload`.

    Raises:
        PayloadError: the text is not a JSON ``[list, object]`` pair.
    """
    if text == _EMPTY:  # no arguments: most jobs of a busy queue, and the cheapest
        return [], {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
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
        PayloadError: not a dict with str keys (at any depth), not
            JSON-serializable, nested deeper than :data:`MAX_DEPTH`, not valid
            Unicode, or over ``max_bytes`` (default 64 KiB).
    """
    if meta is None or (isinstance(meta, dict) and not meta):
        return ""
    if not isinstance(meta, dict):
        raise PayloadError(f"meta must be a dict with str keys, got {type(meta).__name__}")
    _walk("meta", meta, 1)
    text = _dumps("meta", meta)
    if _utf8_size("meta", text) > max_bytes:
        raise PayloadError(f"meta is over the limit of {max_bytes} bytes")
    return text


def encode_result(value: object, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Encode a task's return value as JSON text.

    Raises:
        PayloadError: as :func:`encode_payload` (not JSON-serializable, a
            non-``str`` key, too deep, not valid Unicode) or larger than
            ``max_bytes``.
    """
    if value is None and len(_NULL) <= max_bytes:  # a task that returns nothing
        return _NULL
    check_json_value("result", value)
    text = _dumps("result", value)
    size = _utf8_size("result", text)
    if size > max_bytes:
        raise PayloadError(f"result is {size} bytes, over the limit of {max_bytes} bytes")
    return text


def decode_result(text: str) -> Any:
    """Decode a result written by :func:`encode_result`.

    Raises:
        PayloadError: the stored text is not JSON (a damaged record).
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"stored result is not valid JSON: {exc}") from None


def _storable(value: object) -> tuple[str, bool]:
    """``value`` as text that encodes to UTF-8, and whether anything was escaped."""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8"), True
    return text, False


def encode_error(error: str, kind: str, traceback: str = "", attempt: int = 0) -> str:
    """Encode an error record: ``{"error", "type", "traceback", "attempt"}``.

    Never raises. ``error`` and ``traceback`` are truncated to 16 KiB each so a
    runaway message cannot bloat the job record. Text that is not valid
    Unicode (lone surrogates) is escaped (``\\udcff``) and the record gets
    ``"escaped": true``, so what a task raised is always recorded and the
    reader is told it was changed.
    """
    fields = {
        "error": error[:_ERROR_LIMIT] if isinstance(error, str) else error,
        "type": kind,
        "traceback": traceback[-_ERROR_LIMIT:] if isinstance(traceback, str) else traceback,
    }
    record: dict[str, object] = {}
    escaped = False
    for name, value in fields.items():
        record[name], changed = _storable(value)
        escaped = escaped or changed
    record["attempt"] = attempt if type(attempt) is int else 0
    if escaped:
        record["escaped"] = True
    return _encoder.encode(record)


def decode_error(text: str) -> dict[str, Any]:
    """Decode an error record; a malformed one is returned as ``{"error": text}``."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"error": text, "type": "", "traceback": "", "attempt": 0}
    if not isinstance(value, dict):
        return {"error": text, "type": "", "traceback": "", "attempt": 0}
    return value
