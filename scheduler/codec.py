"""The app's codec: how job arguments and results become stored text.

JSON is the default and the only thing decoded from Redis without the app's
consent. :class:`JSONCodec` adds *tagged values* for types JSON lacks
(``datetime``, ``UUID``, ``Decimal``, dataclasses and attrs classes, your
own): ``{"$scheduler": tag, "v": encoded}``, decoded back only by a codec
that registered the tag -- never pickle, so writing to Redis never means
running code in a worker (``docs/design.md``, "Payloads and safety").
Limits and exactness are those of :mod:`scheduler.serialization`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from scheduler.errors import PayloadError, ValidationError
from scheduler.serialization import (
    MAX_DEPTH,
    decode_payload,
    decode_result,
    encode_payload,
    encode_result,
)
from scheduler.validation import shown

__all__ = ["DEFAULT_CODEC", "TAG", "JSONCodec", "record_type"]

_SCALARS = frozenset({str, int, float, bool, type(None)})


#: The key that marks a tagged value in a :class:`JSONCodec` payload:
#: ``{"$scheduler": name, "v": encoded}``. A dict of the caller's own that
#: holds this key is stored escaped (``{"$scheduler": "dict", "v": [[k, v], ...]}``)
#: so it comes back exactly.
TAG = "$scheduler"

_ESCAPED_DICT = "dict"

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def _standard_types() -> tuple[dict[type, tuple[str, Encoder]], dict[str, Decoder]]:
    """Tagged encoders/decoders of standard-library types that round-trip
    exactly: ``datetime`` (naive or aware, microseconds and fixed UTC offsets
    kept; a ``zoneinfo`` zone comes back as its offset at that instant),
    ``date``, ``time``, ``timedelta``, ``UUID``, ``Decimal`` (text, so every
    digit is kept), ``bytes`` (base64), ``set``/``frozenset`` (as lists)."""
    enc: dict[type, tuple[str, Encoder]] = {
        dt.datetime: ("datetime", lambda v: v.isoformat()),
        dt.date: ("date", lambda v: v.isoformat()),
        dt.time: ("time", lambda v: v.isoformat()),
        dt.timedelta: ("timedelta", lambda v: [v.days, v.seconds, v.microseconds]),
        uuid.UUID: ("uuid", str),
        decimal.Decimal: ("decimal", str),
        bytes: ("bytes", lambda v: base64.b64encode(v).decode("ascii")),
        set: ("set", list),
        frozenset: ("frozenset", list),
    }
    dec: dict[str, Decoder] = {
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "time": dt.time.fromisoformat,
        "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
        "uuid": uuid.UUID,
        "decimal": decimal.Decimal,
        "bytes": lambda v: base64.b64decode(v.encode("ascii"), validate=True),
        "set": set,
        "frozenset": frozenset,
    }
    return enc, dec


def record_type(cls: type, name: str | None = None) -> tuple[type, str, Encoder, Decoder]:
    """A tagged type for a dataclass or attrs class, for :class:`JSONCodec`'s
    ``records``: encoded as its fields (shallow: a field holding another
    registered type is tagged in turn), decoded with ``cls(**fields)``.

    Args:
        cls: a dataclass or an attrs class whose ``__init__`` takes its fields.
        name: the tag (default ``module:qualname``).

    Raises:
        ValidationError: ``cls`` is neither a dataclass nor an attrs class.
    """
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    elif attrs.has(cls):
        names = [f.name for f in attrs.fields(cls)]
    else:
        raise ValidationError(f"{shown(cls)} is neither a dataclass nor an attrs class")
    return (
        cls,
        name or f"{cls.__module__}:{cls.__qualname__}",
        lambda v: {n: getattr(v, n) for n in names},
        lambda v: cls(**v),
    )


class JSONCodec:
    """How an app encodes job arguments and results: JSON, with optional
    tagged values for types JSON lacks -- never pickle.

    The default ``JSONCodec()`` is plain JSON (:func:`encode_payload` and
    friends). Extra types are opt-in, per app, in both directions: a value
    of a registered type is stored as ``{"$scheduler": name, "v": encoded}``
    and decoded only by a codec that registered ``name``; any other reader
    (the CLI, the dashboard, an app that did not opt in) sees the plain JSON
    object. Round trips are exact: a dict of the caller's own that holds the
    ``"$scheduler"`` key is escaped, and tuples still become lists.

    Args:
        encoders: ``{type: (tag, encode)}``; ``encode(value)`` returns
            something JSON can hold (it may contain registered types again).
            The exact type is looked up first, then its base classes.
        decoders: ``{tag: decode}``; ``decode(v)`` rebuilds the value.
        standard_types: also register ``datetime``, ``date``, ``time``,
            ``timedelta``, ``UUID``, ``Decimal``, ``bytes``, ``set`` and
            ``frozenset`` (tags of those names).
        records: dataclasses/attrs classes (or :func:`record_type` tuples) to
            register.

    Raises:
        ValidationError: a tag without its decoder (or the reverse), a
            reserved or repeated tag, or a record that is not a
            dataclass/attrs class.
    """

    def __init__(
        self,
        encoders: Mapping[type, tuple[str, Encoder]] | None = None,
        decoders: Mapping[str, Decoder] | None = None,
        *,
        standard_types: bool = False,
        records: Iterable[type | tuple[type, str, Encoder, Decoder]] = (),
    ) -> None:
        enc, dec = _standard_types() if standard_types else ({}, {})
        enc.update(encoders or {})
        dec.update(decoders or {})
        for item in records:
            cls, tag, e, d = item if isinstance(item, tuple) else record_type(item)
            enc[cls], dec[tag] = (tag, e), d
        tags = [tag for tag, _ in enc.values()]
        if _ESCAPED_DICT in dec or len(set(tags)) != len(tags) or set(tags) != set(dec):
            raise ValidationError(
                "every encoder tag needs one decoder and the reverse, tags unique, "
                f"{_ESCAPED_DICT!r} reserved; got encoders {sorted(tags)} and "
                f"decoders {sorted(dec)}"
            )
        self._enc = enc
        self._dec = dec

    @property
    def tags(self) -> frozenset[str]:
        """The tags this codec decodes."""
        return frozenset(self._dec)

    # -- payloads and results ------------------------------------------------

    def encode_payload(
        self, args: Sequence[Any], kwargs: dict[str, Any] | None, max_bytes: int
    ) -> str:
        """As :func:`encode_payload`, with registered types tagged.

        Raises:
            PayloadError: as :func:`encode_payload`; also a value whose
                ``encode`` failed.
        """
        if not self._enc:
            return encode_payload(args, kwargs, max_bytes)
        if not isinstance(args, tuple | list):
            raise PayloadError(f"args must be a tuple or list, got {type(args).__name__}")
        kw = {} if kwargs is None else kwargs
        if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
            raise PayloadError("kwargs must be a dict with str keys")
        return encode_payload(self._to_json(list(args), 1), self._to_json(kw, 1), max_bytes)

    def decode_payload(self, text: str) -> tuple[list[Any], dict[str, Any]]:
        """As :func:`decode_payload`, with registered tags decoded.

        Raises:
            PayloadError: not a JSON ``[list, object]`` pair, or a tagged value
                its decoder refused.
        """
        if not self._dec:
            return decode_payload(text)
        args, kwargs = decode_payload(text)
        return self._from_json(args), self._from_json(kwargs)

    def encode_result(self, value: object, max_bytes: int) -> str:
        """As :func:`encode_result`, with registered types tagged."""
        return encode_result(self._to_json(value, 0) if self._enc else value, max_bytes)

    def decode_result(self, text: str) -> Any:
        """As :func:`decode_result`, with registered tags decoded."""
        value = decode_result(text)
        return self._from_json(value) if self._dec else value

    # -- the tagged form -------------------------------------------------------

    def _encoder(self, kind: type) -> tuple[str, Encoder] | None:
        found = self._enc.get(kind)
        if found is None:
            found = next((self._enc[b] for b in kind.__mro__[1:] if b in self._enc), None)
        return found

    def _to_json(self, value: Any, depth: int) -> Any:
        """``value`` with registered types tagged and the tag key escaped."""
        if depth > MAX_DEPTH:
            raise PayloadError(f"payload is nested more than {MAX_DEPTH} levels deep")
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list or kind is tuple:
            return [self._to_json(v, depth + 1) for v in value]
        if kind is dict:
            if TAG in value:
                pairs = [[k, self._to_json(v, depth + 2)] for k, v in value.items()]
                return {TAG: _ESCAPED_DICT, "v": pairs}
            return {k: self._to_json(v, depth + 1) for k, v in value.items()}
        found = self._encoder(kind)
        if found is None:
            return value  # not registered: plain JSON encoding decides
        tag, encode = found
        try:
            encoded = encode(value)
        except Exception as exc:
            raise PayloadError(f"cannot encode {shown(value)} as {tag!r}: {exc}") from None
        return {TAG: tag, "v": self._to_json(encoded, depth + 1)}

    def _from_json(self, value: Any) -> Any:
        kind = type(value)
        if kind is list:
            return [self._from_json(v) for v in value]
        if kind is not dict:
            return value
        tag = value.get(TAG)
        if tag is None or not isinstance(tag, str):
            return {k: self._from_json(v) for k, v in value.items()}
        inner = value.get("v")
        if tag == _ESCAPED_DICT and isinstance(inner, list):
            return {k: self._from_json(v) for k, v in inner}
        decode = self._dec.get(tag)
        if decode is None:  # not consented to: left as the plain JSON object
            return {k: self._from_json(v) for k, v in value.items()}
        try:
            return decode(self._from_json(inner))
        except Exception as exc:
            raise PayloadError(f"cannot decode a {tag!r} value: {exc}") from None


#: The default codec: plain JSON.
DEFAULT_CODEC = JSONCodec()
