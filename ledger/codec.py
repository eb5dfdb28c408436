"""The one canonical codec: every message, block and transaction goes through here.

A *record* is a frozen, slotted dataclass registered under a small integer tag.
On the wire it is a msgpack array ``[tag, field1, field2, ...]`` in declared
order (never a map), with ``use_bin_type=True`` so ``bytes`` and ``str`` stay
distinct. Signatures are computed over exactly these bytes, so the encoding must
be a function of the value alone: the same object always gives the same bytes,
and decoding accepts only bytes that re-encode to themselves (no over-long
integers, no ``str16`` where ``str8`` fits, no trailing garbage).

Every decoding failure raises :class:`CodecError` with a short machine-readable
``reason``; callers that face untrusted peers catch that one type, count the
reason and drop the message. Nothing else escapes :func:`decode`.

This module imports nothing else of the project so that ``pbft`` (which may
import only the codec) can depend on it without pulling in the ledger.

Tag ranges, so packages never collide: ``pbft`` 1-49, ``ledger`` 50-99,
``chaincode`` 100-149, ``sim`` 150-199, contracts 200-299.

At some 640 lines it is over the project's usual module size on purpose:
encoding, the canonicality check and the decode cache must agree byte for
byte, and keeping them side by side is what lets a reader check that they do
(the compiled decoders included: they must accept exactly what the generic one does).
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

__all__ = [
    "DEFAULT_MAX_SIZE",
    "CodecError",
    "bin_header",
    "cached_encoding",
    "constructor",
    "decode",
    "encode",
    "encode_replacing_last",
    "encode_unshared",
    "field_signer",
    "record",
    "registered_tags",
    "remember_decoding",
    "sign_fields",
]

T = TypeVar("T")

DEFAULT_MAX_SIZE = 8 * 1024 * 1024
"""Largest encoded value :func:`decode` accepts unless told otherwise (8 MiB)."""


class CodecError(ValueError):
    """Bytes that are not the canonical encoding of a registered record."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


_Checker = Callable[[Any], Any]
"""Turns a decoded msgpack value into the field's Python value, or raises CodecError."""

_by_tag: dict[int, type] = {}
_tag_of: dict[type, int] = {}
_plans: dict[type, tuple[tuple[str, ...], tuple[_Checker, ...]]] = {}


def record(tag: int) -> Callable[[type[T]], type[T]]:
    """Register a frozen, slotted dataclass under ``tag``.

    Field annotations may be ``int``, ``bool``, ``str``, ``bytes``, ``X | None``,
    ``tuple[X, ...]``, another record class, or a union of record classes.
    Floats and maps are refused: they have no single canonical form worth trusting.
    """

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        if not params.frozen or "__slots__" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must be @dataclass(frozen=True, slots=True)")
        if tag in _by_tag and _by_tag[tag] is not cls:
            raise TypeError(f"tag {tag} already used by {_by_tag[tag].__name__}")
        if not 0 <= tag < 2**16:
            raise TypeError(f"tag {tag} out of range")
        _by_tag[tag] = cls
        _tag_of[cls] = tag
        return cls

    return register


def registered_tags() -> dict[int, type]:
    """A copy of the tag table (for docs, traces and tests)."""
    return dict(_by_tag)


# --------------------------------------------------------------------------- encode


def _to_wire(value: Any) -> Any:
    cls = type(value)
    wirer = _wirers.get(cls)
    if wirer is not None:
        return wirer(value)
    if cls in _tag_of:
        return _make_wirer(cls)(value)
    if cls is tuple or cls is list:
        return [_to_wire(item) for item in value]
    if cls is float or cls is dict:
        raise TypeError(f"cannot encode {cls.__name__}: floats and maps have no canonical form")
    return value


_nested_fields: dict[type, tuple[tuple[str, bool], ...]] = {}
"""Per record class: (field name, whether the field may hold a record)."""

_wirers: dict[type, Callable[[Any], list[Any]]] = {}
"""Per record class: value -> ``[tag, field, ...]`` ready for msgpack.

Encoding is on every hot path (signing, digests, sending), so each class gets
a function built once from its annotations: fields that can hold no record
(scalars, tuples of scalars; msgpack packs tuples as arrays) are copied as
they are, and only fields that may hold records are converted recursively.
"""


def _mentions_record(hint: Any) -> bool:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return True
    return any(_mentions_record(arg) for arg in typing.get_args(hint))


def _make_wirer(cls: type) -> Callable[[Any], list[Any]]:
    names = _plan(cls)[0]
    tag = _tag_of[cls]
    hints = typing.get_type_hints(cls)
    nested = tuple(_mentions_record(hints[name]) for name in names)
    fields = _nested_fields[cls] = tuple(zip(names, nested, strict=True))
    if not any(nested) and len(names) > 1:
        fields_of = operator.attrgetter(*names)  # one C call for all fields

        def wire_flat(value: Any) -> list[Any]:
            return [tag, *fields_of(value)]

        wirer = wire_flat
    elif not any(nested):

        def wire_flat_short(value: Any) -> list[Any]:
            return [tag, *[getattr(value, name) for name in names]]

        wirer = wire_flat_short
    else:

        def wire_nested(value: Any) -> list[Any]:
            out: list[Any] = [tag]
            for name, convert in fields:
                item = getattr(value, name)
                out.append(_to_wire(item) if convert and item is not None else item)
            return out

        wirer = wire_nested
    _wirers[cls] = wirer
    return wirer


def encode(value: Any) -> bytes:
    """The canonical bytes of a registered record.

    The bytes are also offered to :func:`decode` (see :func:`remember_decoding`):
    what is encoded here is usually sent, and each receiver would otherwise
    unpack and rebuild it.
    """
    key = id(value)
    if _encoded_objects.get(key) is value:
        # ``cached_encoding``'s usual answer without the call: every send asks for
        # the bytes of a message signed just before (when they were remembered).
        remembered = _encoded[key]
        if type(remembered) is bytes:
            return remembered
    known = cached_encoding(value)
    if known is not None:
        return known
    data = _encode_new(value, _KEEP)
    remember_decoding(value, data)
    return data


def encode_unshared(value: Any) -> bytes:
    """:func:`encode` for bytes nobody will receive, such as records a replica persists.

    Offering bytes to :func:`decode` costs a type check of the whole value, and
    a record written to storage is only read back after a restart, by then
    from other bytes objects: so it is neither checked nor remembered.
    """
    known = cached_encoding(value)
    if known is not None:
        return known
    return _encode_new(value, _KEEP)


def encode_replacing_last(value: Any, last: Any) -> bytes:
    """The canonical bytes ``value`` would have with its last field set to ``last``.

    Equal to encoding a copy with that field replaced, without building the copy
    (and re-running its construction checks): this is how signed bytes, which
    cover a message with an empty signature, are computed. Nothing is cached.
    """
    return _encode_new(value, last)


_KEEP: Any = object()
"""``_encode_new``'s "last field as it is" marker."""


def _encode_new(value: Any, last: Any) -> bytes:
    cls = type(value)
    if cls not in _tag_of:
        raise TypeError(f"{cls.__name__} is not a registered record")
    return (_record_packers.get(cls) or _make_record_packer(cls))(value, last)


_record_packers: dict[type, Callable[[Any, Any], bytes]] = {}
"""Per record class: (value, last field or ``_KEEP``) -> canonical bytes.

msgpack is concatenative: an array is its header followed by its elements'
bytes. So a record holding other records is packed piece by piece, and a
piece whose bytes are already known (a request inside a PRE-PREPARE, the
prepares inside a proof, received messages inside a snapshot) is spliced in
rather than encoded again. Records without nested records are packed whole,
which is faster than piecing scalars together.
"""


def _make_record_packer(cls: type) -> Callable[[Any, Any], bytes]:
    wirer = _wirers.get(cls) or _make_wirer(cls)
    nested = _nested_fields[cls]
    pack = _packer.pack
    if not any(convert for _, convert in nested):

        def pack_flat(value: Any, last: Any) -> bytes:
            wire = wirer(value)  # a fresh list
            if last is not _KEEP:
                if len(wire) < 2:
                    raise TypeError(f"{cls.__name__} has no fields")
                wire[-1] = _to_wire(last)
            packed: bytes = pack(wire)
            return packed

        packer = pack_flat
    else:
        head = _packer.pack_array_header(len(nested) + 1) + pack(_tag_of[cls])
        final = len(nested) - 1

        def pack_nested(value: Any, last: Any) -> bytes:
            parts = [head]
            for index, (name, convert) in enumerate(nested):
                item = last if index == final and last is not _KEEP else getattr(value, name)
                parts.append(_pack_any(item) if convert and item is not None else pack(item))
            return b"".join(parts)

        packer = pack_nested
    _record_packers[cls] = packer
    return packer


def _pack_any(value: Any) -> bytes:
    """Canonical bytes of a field value that may hold records (see ``_to_wire``).

    A record whose bytes are known, or a tuple of records, is spliced; a
    record whose bytes are not known goes through its own packer, which
    splices the known bytes of its parts in turn (a snapshot's prepared
    certificates: their pre-prepares and prepares were all received or
    sent). Anything else is packed whole, since piecing its scalars together
    would cost more than it saves.
    """
    cls = type(value)
    if cls in _tag_of:
        known = cached_encoding(value)
        if known is not None:
            return known
        return _encode_new(value, _KEEP)
    elif (cls is tuple or cls is list) and value and type(value[0]) in _tag_of:
        # Known bytes looked up here, not one call deeper: a proof splices a quorum of votes.
        parts = [cached_encoding(v) or _pack_any(v) for v in value]
        return _packer.pack_array_header(len(value)) + b"".join(parts)
    packed: bytes = _packer.pack(_to_wire(value))
    return packed


_ENCODED_CACHE_SIZE = 16384
_encoded_objects: dict[int, Any] = {}
_encoded: dict[int, bytes | list[Any]] = {}
"""Canonical bytes (or the wire list to pack them from) of particular record *objects*.

Keyed by identity: records are immutable, so an object's bytes never change,
and ``_encoded_objects`` holds the object itself under the same key, so its id
cannot be reused while the entry lives (two dicts rather than one of pairs:
a pair per entry would be one more object for the garbage collector to
track, on every message). Every entry is also a promise that the object's
fields have exactly the types decoding gives (:func:`remember_decoding`
checked it, or :func:`decode` built the object), which lets that check stop
at known parts. A broadcast is thereby encoded once, not once to sign and
again to send, and a received message is never re-encoded to check its
signature or to relay it.
"""


def _remember(value: Any, known: bytes | list[Any]) -> None:
    """Make ``known`` (bytes, or the wire list to pack them from) ``value``'s ``_encoded`` entry."""
    if len(_encoded) >= _ENCODED_CACHE_SIZE:
        _encoded.clear()  # amortised O(1); the hot entries come back at once
        _encoded_objects.clear()
    key = id(value)
    _encoded_objects[key] = value
    _encoded[key] = known


def _offer(value: Any, known: bytes) -> None:
    """Remember that ``known`` is ``value``'s canonical bytes both ways.

    Decoding the bytes then answers the record, encoding the record the bytes.
    The caller vouches for the types (as :func:`remember_decoding` checks) and
    the size.
    """
    if len(_decoded) >= _DECODED_CACHE_SIZE:
        _decoded.clear()  # amortised O(1); evicting one by one scans dict holes
    _decoded[known] = value
    _remember(value, known)


def forget_everything() -> None:
    """Empty the codec's caches, as in a process that has seen none of these bytes (tests)."""
    _decoded.clear()
    _encoded.clear()
    _encoded_objects.clear()


def cached_encoding(value: Any) -> bytes | None:
    """``encode(value)`` if it is already known for this very object, else ``None``."""
    key = id(value)
    if _encoded_objects.get(key) is not value:
        return None
    known = _encoded[key]
    if isinstance(known, bytes):
        return known
    data: bytes = _packer.pack(known)  # a decoded nested record's wire form, packed once
    if len(data) <= _CACHED_MAX_BYTES:
        # Decoded, so decoding these bytes gives ``value``: a request taken out of a
        # PRE-PREPARE is stored in its block and read back from it as these bytes.
        _offer(value, data)
    else:
        _encoded[key] = data
    return data


def remember_decoding(value: Any, data: bytes) -> None:
    """Record that ``data`` is ``encode(value)``, so decoding it may answer ``value``.

    Sound only because it is checked: every field must already have exactly
    the type :func:`decode` would give it (``int`` not ``bool``, tuples not
    lists, records of an allowed class, recursively), so the decoded value
    would equal ``value`` field for field. Anything else is simply not
    remembered. The caller vouches that ``data`` is ``encode(value)``.
    """
    if type(data) is not bytes or len(data) > _CACHED_MAX_BYTES:
        return
    if type(value) not in _tag_of or not _object_ok(value):
        return
    _offer(value, data)


def sign_fields(
    cls: Callable[..., T], fields: tuple[Any, ...], sign: Callable[[bytes], bytes]
) -> T | None:
    """``cls(*fields, signature)``, where ``signature = sign(encode(cls(*fields, b"")))``.

    This is how a message is signed (``pbft.messages.signed``): its last field
    is a signature over its encoding with that field empty. The unsigned
    message is never built, only its bytes; the signed one's bytes follow from
    them and are offered to :func:`decode`, so a broadcast is encoded once and
    its receivers need not decode it. ``None`` when this way does not apply (a
    record holding records, or a field whose type is not exactly the one
    decoding gives, which therefore must not be remembered): the caller then
    builds the unsigned message and takes the general way.
    """
    signed: T | None = field_signer(cls)(fields, sign)
    return signed


def field_signer(cls: Callable[..., Any]) -> _FieldSigner:
    """:func:`sign_fields` for one class, as a function of ``(fields, sign)``.

    For a caller signing many messages of one class in a row (a replica's
    replies to a batch), which thereby looks the class up once, not per message.
    """
    signer = _field_signers.get(cls)
    if signer is None:
        if cls not in _tag_of:
            return _cannot_sign_fields
        signer = _field_signers[cls] = _make_field_signer(cls)
    return signer


def _cannot_sign_fields(_fields: tuple[Any, ...], _sign: Callable[[bytes], bytes]) -> None:
    return None


_FieldSigner = Callable[[tuple[Any, ...], Callable[[bytes], bytes]], Any]
_field_signers: dict[Callable[..., Any], _FieldSigner] = {}


def _make_field_signer(cls: type) -> _FieldSigner:
    """Straight-line code, as for decoders (:func:`_compile_builder`), signing one class's fields.

    Every message a replica sends comes through here (160 replies per batch at
    n = 16), so the exact-type test of each field, the encoding, the record's
    construction and remembering its bytes are written out for the class's
    own fields instead of looped over.
    """
    names = _plan(cls)[0]
    hints = typing.get_type_hints(cls)
    kinds = tuple(hints[name] for name in names)
    if len(names) < 2 or kinds[-1] is not bytes or not set(kinds) <= _SCALARS:
        return _cannot_sign_fields
    args = [f"f{index}" for index in range(len(names) - 1)]
    namespace: dict[str, Any] = {
        "make": constructor(cls),
        "pack": _packer.pack,
        "offer": _offer,
        "CACHED_MAX_BYTES": _CACHED_MAX_BYTES,
        **{f"kind{index}": kind for index, kind in enumerate(kinds)},
    }
    # Exactly the types decoding gives (and the right count): the one check
    # that makes the signed message safe to hand to receivers as "decoded".
    typed = " or ".join(f"type({arg}) is not kind{index}" for index, arg in enumerate(args))
    listed = ", ".join(args)
    source = f"""
def sign_flat(fields, sign):
    if len(fields) != {len(args)}:
        return None
    {listed}, = fields
    if {typed}:
        return None
    payload = pack([{_tag_of[cls]}, {listed}, b""])
    signature = sign(payload)
    signed = make({listed}, signature)
    if type(signature) is not bytes:
        return signed  # an odd signer's message: sent as it is, never remembered
    data = payload[:-2] + pack(signature)  # the empty bin's place: the signature's bin
    if len(data) <= CACHED_MAX_BYTES:
        offer(signed, data)  # as remember_decoding would, without re-checking the types
    return signed
"""
    exec(source, namespace)  # generated from the class's own field list
    signer: _FieldSigner = namespace["sign_flat"]
    return signer


_SCALARS = frozenset((int, bool, str, bytes))


def bin_header(size: int) -> bytes:
    """msgpack's header for a ``bin`` of ``size`` bytes (the shortest form, as canonical)."""
    if size < 0x100:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 0x10000:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


_Predicate = Callable[[Any], bool]
_object_checks: dict[type, _Predicate] = {}
"""Per record class: whether an instance's fields have exactly their decoded types."""


def _object_ok(value: Any) -> bool:
    if _encoded_objects.get(id(value)) is value:
        return True  # entries are only made for values that passed (see ``_encoded``)
    cls = type(value)
    check = _object_checks.get(cls)
    if check is None:
        check = _object_checks[cls] = _make_object_check(cls)
    return check(value)


def _make_object_check(cls: type) -> _Predicate:
    names = _plan(cls)[0]
    hints = typing.get_type_hints(cls)
    if len(names) > 1 and all(hints[name] in (int, bool, str, bytes) for name in names):
        # The common case (votes, replies): compare the fields' exact types at once.
        values = operator.attrgetter(*names)
        kinds = tuple(hints[name] for name in names)
        return lambda value: tuple(map(type, values(value))) == kinds
    fields = tuple((name, _predicate_for(hints[name])) for name in names)

    def check(value: Any) -> bool:
        for name, ok in fields:  # noqa: SIM110 (a plain loop: all() over a generator is slower)
            if not ok(getattr(value, name)):
                return False
        return True

    return check


def _predicate_for(hint: Any) -> _Predicate:
    """The object-side twin of ``_checker_for``: accepts exactly what decoding produces."""
    if hint in (int, bool, str, bytes, type(None)):
        return lambda value: type(value) is hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_predicate((hint,))
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = _predicate_for(args[0])
            return lambda value: type(value) is tuple and all(map(inner, value))
        parts = tuple(_predicate_for(a) for a in args)
        return lambda value: (
            type(value) is tuple
            and len(value) == len(parts)
            and all(ok(item) for ok, item in zip(parts, value, strict=True))
        )
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = tuple(a for a in args if a is not type(None))
        if all(isinstance(a, type) and dataclasses.is_dataclass(a) for a in rest):
            one = _record_predicate(rest)
        else:
            one = _predicate_for(rest[0])
        return (lambda value: value is None or one(value)) if optional else one
    raise TypeError(f"type {hint!r} is not encodable")


def _record_predicate(classes: tuple[type, ...]) -> _Predicate:
    return lambda value: type(value) in classes and _object_ok(value)


_packer = msgpack.Packer(use_bin_type=True)


# --------------------------------------------------------------------------- decode


def _refuse_map(_pairs: Any) -> Any:
    raise CodecError("map", "maps are not part of the canonical encoding")


def _refuse_ext(code: int, _data: bytes) -> Any:
    raise CodecError("ext", f"msgpack extension type {code} is not allowed")


_DECODED_CACHE_SIZE = 8192
_CACHED_MAX_BYTES = 64 * 1024
_decoded: dict[bytes, Any] = {}
"""Recently decoded values by their exact bytes.

A broadcast delivers one byte string to n-1 receivers, and records are
immutable, so decoding each distinct byte string once is sound and saves the
type checks and the canonical re-encoding on every other copy. Only bytes that
passed every check are remembered; a full cache is emptied and refills.
"""


def decode(data: bytes, expected: type[T] | None = None, max_size: int = DEFAULT_MAX_SIZE) -> T:
    """Decode canonical bytes into a record, checking every field's type.

    ``expected`` (a record class, or ``None`` for any registered record) makes a
    well-formed record of another type an error too.
    """
    if expected is None and type(data) is bytes:
        # The hot path: a copy of a broadcast already decoded (the checks below all pass).
        hit = _decoded.get(data)
        if hit is not None and len(data) <= max_size:
            return hit
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError("type", "input is not bytes")
    if len(data) > max_size:
        raise CodecError("too-large", f"{len(data)} bytes > limit {max_size}")
    key = bytes(data)
    value = _decoded.get(key)
    if value is None:
        value = _decode_checked(key)
        if len(key) <= _CACHED_MAX_BYTES:
            # Large values (state chunks, blocks) are rare: not worth the memory.
            _offer(value, key)
    if expected is not None and type(value) is not expected:
        raise CodecError("unexpected-type", f"got {type(value).__name__}, want {expected.__name__}")
    return value


def _decode_checked(data: bytes) -> Any:
    try:
        raw = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_refuse_map,
            ext_hook=_refuse_ext,
        )
    except CodecError:
        raise
    except msgpack.ExtraData as exc:
        raise CodecError("trailing-bytes", str(exc)) from None
    except UnicodeDecodeError:
        raise CodecError("bad-utf8", "string is not valid UTF-8") from None
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CodecError("malformed", type(exc).__name__) from None
    value = _any_record(raw)
    # ``raw`` is exactly the wire form of ``value`` (the checks above copied
    # scalars and turned arrays into tuples), so repacking it is the
    # canonicality test without rebuilding the value's wire form.
    if _packer.pack(raw) != data:
        raise CodecError("non-canonical", "bytes do not re-encode to themselves")
    return value


def _any_record(raw: Any) -> Any:
    if type(raw) is not list or not raw:
        raise CodecError("not-a-record", "expected a non-empty array")
    tag = raw[0]
    if type(tag) is not int:
        raise CodecError("bad-tag", "tag is not an integer")
    cls = _by_tag.get(tag)
    if cls is None:
        raise CodecError("unknown-tag", str(tag))
    return _build(cls, raw)


def _build(cls: type, raw: list[Any]) -> Any:
    builder = _builders.get(cls)
    if builder is None:
        builder = _builders[cls] = _compile_builder(cls)
    return builder(raw)


_builders: dict[type, Callable[[list[Any]], Any]] = {}
"""Per record class: its compiled :func:`_build` (see :func:`_compile_builder`)."""


def _compile_builder(cls: type) -> Callable[[list[Any]], Any]:
    """A function doing what :func:`_build_checked` does, for well-formed input only.

    Decoding is on every node's hot path (each transaction's payload holds about a
    dozen records), and the generic loop spends most of its time on calls and
    iteration rather than on the checks themselves. So, as ``dataclasses`` does for
    ``__init__``, each class gets straight-line code: scalar fields' exact types
    tested inline, a nested record (or a tuple of one class of records) built by
    that class's own compiled builder, other fields passed to their checkers, and
    the object made through its slots (:func:`_slot_setters`). Anything that fails goes to
    :func:`_build_checked`, which raises the error; so the errors are, by
    construction, the generic path's.
    """
    names, checkers = _plan(cls)
    hints = typing.get_type_hints(cls)
    scalars = (int, bool, str, bytes)
    namespace: dict[str, Any] = {"cls": cls, "slow": _build_checked, "CodecError": CodecError}
    tests = [f"len(raw) != {len(names) + 1}"]
    args = []
    for index, (name, check) in enumerate(zip(names, checkers, strict=True)):
        item = f"raw[{index + 1}]"
        hint = hints[name]
        inner = typing.get_args(hint)
        if hint in scalars:
            namespace[f"kind{index}"] = hint
            tests.append(f"type({item}) is not kind{index}")
            args.append(item)
        elif _is_record_class(hint):
            namespace[f"check{index}"] = _one_record_checker(hint, check)
            args.append(f"check{index}({item})")
        elif typing.get_origin(hint) is tuple and len(inner) == 2 and inner[1] is Ellipsis:
            if _is_record_class(inner[0]):
                element = _record_checker((inner[0],), f"{cls.__name__}.{name}")
                namespace[f"check{index}"] = _one_record_checker(inner[0], element)
            else:
                namespace[f"check{index}"] = _checker_for(inner[0], f"{cls.__name__}.{name}")
            tests.append(f"type({item}) is not list")
            args.append(f"tuple([check{index}(x) for x in {item}])")
        else:
            namespace[f"check{index}"] = check
            args.append(f"check{index}({item})")
    setters = _slot_setters(cls)
    if setters is None:
        namespace["make"] = constructor(cls)
        make = [f"        return make({', '.join(args)})\n"]
    else:
        namespace["new"] = object.__new__
        namespace["post"] = getattr(cls, "__post_init__", None)
        make = ["        made = new(cls)\n"]
        for index, (setter, arg) in enumerate(zip(setters, args, strict=True)):
            namespace[f"set{index}"] = setter
            make.append(f"        set{index}(made, {arg})\n")
        if namespace["post"] is not None:
            make.append("        post(made)\n")
        make.append("        return made\n")
    source = "".join(
        [
            "def build(raw):\n",
            f"    if {' or '.join(tests)}:\n",
            "        return slow(cls, raw)\n",
            "    try:\n",
            *make,
            "    except (CodecError, TypeError, ValueError):\n",
            "        return slow(cls, raw)\n",
        ]
    )
    exec(source, namespace)  # generated from the class's own field list
    builder: Callable[[list[Any]], Any] = namespace["build"]
    return builder


def _is_record_class(hint: Any) -> bool:
    return isinstance(hint, type) and hint in _tag_of


def _one_record_checker(cls: type, generic: _Checker) -> _Checker:
    """``generic`` (a record checker allowing only ``cls``), minus its dispatch on the tag.

    What is not exactly an array tagged for ``cls`` goes to ``generic``, which
    raises the error it always did.
    """
    tag = _tag_of[cls]

    def check(value: Any) -> Any:
        if type(value) is list and value and type(value[0]) is int and value[0] == tag:
            builder = _builders.get(cls)
            if builder is None:
                builder = _builders[cls] = _compile_builder(cls)
            built = builder(value)
            _remember(built, value)  # as ``_record_checker`` does: see there
            return built
        return generic(value)

    return check


def constructor(cls: Callable[..., T]) -> Callable[..., T]:
    """What to call instead of ``cls`` to make one: the same object and errors, cheaper.

    A class whose ``__init__`` carries a ``construct`` function (those written
    by ``pbft.checked_init``: the same checks, building the object directly
    rather than through a call of the class) is made by that; any other by
    calling the class.
    """
    made: Callable[..., T] = getattr(getattr(cls, "__dict__", {}).get("__init__"), "construct", cls)
    return made


def _slot_setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    """Per field, in declared order, the setter of its slot; ``None``: call the class.

    Calling the class runs the ``__init__`` ``dataclasses`` wrote, which for a frozen
    class sets each field through ``object.__setattr__``: most of the time a
    small record takes to build. Records are slotted, so a compiled builder sets
    each field through its slot descriptor instead and then runs
    ``__post_init__`` (which validates, raising ``TypeError`` or ``ValueError``
    as the class would): the same object, in about half the time. A class with
    its own ``__init__``, or with a field its ``__init__`` leaves out, is called:
    its checks may live in that ``__init__`` (``pbft.checked_init`` marks the ones
    it writes with ``checks_fields``, as their names look like dataclasses' own).
    """
    fields = dataclasses.fields(cls)
    written = cls.__dict__.get("__init__")
    init = getattr(written, "__qualname__", "")
    if getattr(written, "checks_fields", False):
        return None
    if "__create_fn__" not in init and init != f"{cls.__qualname__}.__init__":
        return None
    slots = [_slot(cls, f.name) for f in fields]
    if any(not f.init for f in fields) or None in slots:
        return None
    return [slot.__set__ for slot in slots]


def _slot(cls: type, name: str) -> Any:
    """The slot descriptor holding field ``name`` (``None`` if it is not a slot)."""
    for klass in cls.__mro__:
        found = klass.__dict__.get(name)
        if found is not None:
            return found if isinstance(found, types.MemberDescriptorType) else None
    return None


def _build_checked(cls: type, raw: list[Any]) -> Any:
    names, checkers = _plan(cls)
    if len(raw) != len(names) + 1:
        raise CodecError("arity", f"{cls.__name__} has {len(names)} fields, got {len(raw) - 1}")
    try:
        args = [check(item) for check, item in zip(checkers, raw[1:], strict=True)]
    except CodecError as exc:
        raise CodecError(exc.reason, f"{cls.__name__}: {exc.detail}") from None
    try:
        return cls(*args)
    except (TypeError, ValueError) as exc:
        raise CodecError("invalid", f"{cls.__name__}: {exc}") from None


def _plan(cls: type) -> tuple[tuple[str, ...], tuple[_Checker, ...]]:
    plan = _plans.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls)]
        plan = (
            tuple(f.name for f in fields),
            tuple(_checker_for(hints[f.name], f"{cls.__name__}.{f.name}") for f in fields),
        )
        _plans[cls] = plan
    return plan


def _exact(kind: type, name: str) -> _Checker:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise CodecError("field-type", f"{name}: want {kind.__name__}")
        return value

    return check


def _checker_for(hint: Any, where: str) -> _Checker:
    if hint in (int, bool, str, bytes):
        return _exact(hint, where)
    if hint is type(None):
        return _exact(type(None), where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_checker((hint,), where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = _checker_for(args[0], where)

            def check_tuple(value: Any) -> Any:
                if type(value) is not list:
                    raise CodecError("field-type", f"{where}: want array")
                return tuple([inner(item) for item in value])  # a list: faster than a generator

            return check_tuple
        parts = tuple(_checker_for(a, where) for a in args)

        def check_fixed(value: Any) -> Any:
            if type(value) is not list or len(value) != len(parts):
                raise CodecError("field-type", f"{where}: want array of {len(parts)}")
            return tuple(p(item) for p, item in zip(parts, value, strict=True))

        return check_fixed
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = tuple(a for a in args if a is not type(None))
        if all(isinstance(a, type) and dataclasses.is_dataclass(a) for a in rest):
            inner = _record_checker(rest, where)
        elif len(rest) == 1:
            inner = _checker_for(rest[0], where)
        else:
            raise TypeError(f"{where}: unions are allowed only of records (and None)")
        if not optional:
            return inner

        def check_optional(value: Any) -> Any:
            return None if value is None else inner(value)

        return check_optional
    raise TypeError(f"{where}: type {hint!r} is not encodable")


def _record_checker(classes: tuple[type, ...], where: str) -> _Checker:
    def check(value: Any) -> Any:
        if type(value) is not list or not value or type(value[0]) is not int:
            raise CodecError("field-type", f"{where}: want a record")
        cls = _by_tag.get(value[0])
        if cls is None or cls not in classes:
            raise CodecError("field-type", f"{where}: record tag {value[0]} not allowed here")
        built = _build(cls, value)
        # ``value`` is exactly the nested record's wire form, so packing it
        # gives its canonical bytes: remembered (and packed only if asked),
        # that spares re-encoding it where it is used on its own (hashes of
        # proposals, signed payloads).
        _remember(built, value)
        return built

    return check
