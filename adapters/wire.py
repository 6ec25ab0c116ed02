"""Strict reading of the rails' wire shapes, shared by every rail's `wire.py`, adapter
and simulator.

Each rail describes its bodies as `msgspec.Struct`s; this module turns bytes (or a form
already split into strings) into one of them in a single pass, or raises `Malformed`
with msgspec's message, which names the field at fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeVar

import msgspec

if TYPE_CHECKING:
    from typing_extensions import Buffer  # bytes, msgspec.Raw...

__all__ = ["Malformed", "NonEmptyStr", "Shape", "convert", "decode"]

T = TypeVar("T")

# Rails leave a field out or send it empty for the same "no value": both are refused where
# a value is required.
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class Shape(msgspec.Struct, omit_defaults=True):
    """Base of every wire shape: an optional field left unset is left out of the body, never
    sent as null (a subclass whose required fields follow optional ones adds `kw_only`)."""


class Malformed(Exception):
    """A body that does not have the documented shape."""


def decode(body: Buffer | str, shape: type[T]) -> T:
    """`body` (JSON) as `shape`; raises `Malformed`."""
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise Malformed(str(exc)) from None


def convert(fields: object, shape: type[T]) -> T:
    """Already-decoded fields (a form, a nested object) as `shape`; raises `Malformed`."""
    try:
        return msgspec.convert(fields, type=shape)
    except msgspec.ValidationError as exc:
        raise Malformed(str(exc)) from None
