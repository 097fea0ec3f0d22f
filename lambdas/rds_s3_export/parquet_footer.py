"""A Parquet file's footer, read with two ranged GETs at most: its row counts and column types.

Standard library only (the Lambda runtime ships boto3 and nothing else). Nothing here reads a
data page: the manifest needs each file's row count and each column's Parquet type, and both
are in the footer.

The file layout (parquet-format, README.md "File Format",
https://github.com/apache/parquet-format/blob/master/README.md#file-format)::

    "PAR1" <column chunks ...> <FileMetaData> <4-byte little-endian length of FileMetaData> "PAR1"

so the last 8 bytes give the footer's length and the magic, and the footer sits just before
them. A file whose footer is encrypted ends in "PARE" instead (parquet-format, Encryption.md);
its metadata cannot be read without the key, and is refused by name.

``FileMetaData`` is a Thrift struct serialised with Thrift's compact protocol (parquet-format,
src/main/thrift/parquet.thrift, https://github.com/apache/parquet-format/blob/master/src/main/
thrift/parquet.thrift; the protocol: Apache Thrift, doc/specs/thrift-compact-protocol.md,
https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md). The decoder
below reads any compact-protocol value, so fields this module does not use (statistics, column
chunks, key/value metadata, fields added by later versions of the format) are read past, never
misread: only the field ids named in the comments are interpreted.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MAGIC: Final = b"PAR1"
ENCRYPTED_MAGIC: Final = b"PARE"  # an encrypted footer (parquet-format, Encryption.md)
TAIL_BYTES: Final = 8  # <4-byte footer length> "PAR1"
HEAD_BYTES: Final = 4  # the leading "PAR1"

FIRST_READ_BYTES: Final = 64 * 1024
"""The first (speculative) ranged read: the last 64 KiB, which holds the footer of a typical
file (a few hundred bytes per column and row group) and its 8-byte tail in one GET. A larger
footer costs exactly one more GET, of the bytes missing before it. A file smaller than this is
read in that one GET (at most 64 KiB); only its footer is decoded."""

MAX_FOOTER_BYTES: Final = 64 * 1024 * 1024
"""A footer longer than this is refused as corrupt rather than read into memory. A real
footer grows with columns x row groups; 64 MiB is thousands of times an RDS export's."""

MAX_DEPTH: Final = 64  # nested structs/lists deeper than this are corrupt, not a footer

ReadRange = Callable[[int, int], bytes]
"""``read(start, length)``: ``length`` bytes of the file from byte ``start``."""


class ParquetFooterError(ValueError):
    """A file's footer cannot be read: not Parquet, truncated, encrypted, or corrupt. The
    message names the file and what is wrong."""


# --- the types, as parquet.thrift numbers them ----------------------------------------------

PHYSICAL: Final = {  # enum Type
    0: "BOOLEAN",
    1: "INT32",
    2: "INT64",
    3: "INT96",
    4: "FLOAT",
    5: "DOUBLE",
    6: "BYTE_ARRAY",
    7: "FIXED_LEN_BYTE_ARRAY",
}

# union LogicalType: member id -> the name the manifest uses. Only the members this module
# reads further (DECIMAL, TIME, TIMESTAMP, INTEGER) carry parameters; the rest are names.
LOGICAL: Final = {
    1: "STRING",
    2: "MAP",
    3: "LIST",
    4: "ENUM",
    5: "DECIMAL",
    6: "DATE",
    7: "TIME",
    8: "TIMESTAMP",
    10: "INT",  # IntType, named INTEGER in the union
    11: "NULL",  # NullType, named UNKNOWN in the union: a column that holds only nulls
    12: "JSON",
    13: "BSON",
    14: "UUID",
    15: "FLOAT16",
    16: "VARIANT",
    17: "GEOMETRY",
    18: "GEOGRAPHY",
    19: "VECTOR",
}
TIME_UNITS: Final = {1: "MILLIS", 2: "MICROS", 3: "NANOS"}  # union TimeUnit

# enum ConvertedType (deprecated, still written beside LogicalType, alone by old writers) ->
# the LogicalType it stands for, per LogicalTypes.md's "backward compatibility" tables
# (https://github.com/apache/parquet-format/blob/master/LogicalTypes.md): the legacy time and
# timestamp annotations mean isAdjustedToUTC = true.
CONVERTED: Final[dict[int, dict[str, Any]]] = {
    0: {"logical": "STRING"},  # UTF8
    1: {"logical": "MAP"},
    2: {"logical": "MAP"},  # MAP_KEY_VALUE
    3: {"logical": "LIST"},
    4: {"logical": "ENUM"},
    5: {"logical": "DECIMAL"},  # precision and scale from the SchemaElement
    6: {"logical": "DATE"},
    7: {"logical": "TIME", "unit": "MILLIS", "utc": True},
    8: {"logical": "TIME", "unit": "MICROS", "utc": True},
    9: {"logical": "TIMESTAMP", "unit": "MILLIS", "utc": True},
    10: {"logical": "TIMESTAMP", "unit": "MICROS", "utc": True},
    11: {"logical": "INT", "bit_width": 8, "signed": False},
    12: {"logical": "INT", "bit_width": 16, "signed": False},
    13: {"logical": "INT", "bit_width": 32, "signed": False},
    14: {"logical": "INT", "bit_width": 64, "signed": False},
    15: {"logical": "INT", "bit_width": 8, "signed": True},
    16: {"logical": "INT", "bit_width": 16, "signed": True},
    17: {"logical": "INT", "bit_width": 32, "signed": True},
    18: {"logical": "INT", "bit_width": 64, "signed": True},
    19: {"logical": "JSON"},
    20: {"logical": "BSON"},
    21: {"logical": "INTERVAL"},
}


@dataclass(frozen=True)
class Column:
    """One top-level column of the file's schema, as the manifest's ``parquet`` object.

    ``physical`` is None for a group (a nested column: RDS writes none, see docs); ``logical``
    is None for a plain physical type. The parameters are None where they do not apply."""

    name: str
    physical: str | None
    logical: str | None = None
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    unit: str | None = None
    utc: bool | None = None
    bit_width: int | None = None
    signed: bool | None = None

    def as_manifest(self) -> dict[str, Any]:
        """The manifest's ``columns[].parquet`` object (docs/snowflake.md)."""
        return {
            "physical": self.physical,
            "logical": self.logical,
            "precision": self.precision,
            "scale": self.scale,
            "length": self.length,
            "unit": self.unit,
            "utc": self.utc,
            "bit_width": self.bit_width,
            "signed": self.signed,
        }


@dataclass(frozen=True)
class Footer:
    """What the manifest needs of one file's ``FileMetaData``."""

    num_rows: int
    row_groups: tuple[int, ...]  # each row group's num_rows
    columns: tuple[Column, ...]  # the top-level columns, in schema order
    created_by: str | None
    footer_bytes: int  # the length of the serialised FileMetaData


# --- Thrift compact protocol --------------------------------------------------------------

# compact-protocol type ids (thrift-compact-protocol.md, "Struct encoding"); in a list, set or
# map header a bool element is either 1 or 2, and each element is then one byte
_STOP, _TRUE, _FALSE, _I8, _I16, _I32, _I64, _DOUBLE, _BINARY = 0, 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12


class _Corrupt(Exception):
    """Raised inside the decoder; turned into ParquetFooterError with the file's name."""


class _Compact:
    """A reader of compact-protocol values from one buffer. Structs decode to
    ``{field id: value}``, lists and sets to lists, maps to lists of pairs, binary to bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Corrupt(f"the footer ends early, at byte {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        # ULEB128: 7 bits a byte, low group first; an i64 takes at most 10 bytes
        result = 0
        for shift in range(0, 70, 7):
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
        raise _Corrupt(f"a varint longer than 10 bytes at byte {self.pos}")

    def _zigzag(self) -> int:
        raw = self._varint()
        return (raw >> 1) ^ -(raw & 1)

    def _size(self, size: int) -> int:
        # every element takes at least one byte: a larger count cannot fit what is left
        if size < 0 or size > len(self.data) - self.pos:
            raise _Corrupt(f"a collection of {size} elements at byte {self.pos} cannot fit")
        return size

    def value(self, ctype: int, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Corrupt(f"values nested deeper than {MAX_DEPTH} levels")
        if ctype in (_TRUE, _FALSE):  # inside a collection: one byte per bool
            return self._byte() == _TRUE
        if ctype == _I8:
            byte = self._byte()
            return byte - 256 if byte > 127 else byte
        if ctype in (_I16, _I32, _I64):
            return self._zigzag()
        if ctype == _DOUBLE:
            end = self.pos + 8
            if end > len(self.data):
                raise _Corrupt(f"the footer ends early, in a double at byte {self.pos}")
            (number,) = struct.unpack("<d", self.data[self.pos : end])
            self.pos = end
            return number
        if ctype == _BINARY:
            length = self._size(self._varint())
            chunk = self.data[self.pos : self.pos + length]
            self.pos += length
            return chunk
        if ctype in (_LIST, _SET):
            header = self._byte()
            size, etype = header >> 4, header & 0x0F
            if size == 15:
                size = self._varint()
            return [self.value(etype, depth + 1) for _ in range(self._size(size))]
        if ctype == _MAP:
            size = self._size(self._varint())
            if size == 0:
                return []
            kinds = self._byte()
            return [
                (self.value(kinds >> 4, depth + 1), self.value(kinds & 0x0F, depth + 1))
                for _ in range(size)
            ]
        if ctype == _STRUCT:
            return self.struct(depth + 1)
        raise _Corrupt(f"unknown compact-protocol type {ctype} at byte {self.pos - 1}")

    def struct(self, depth: int = 0) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        last = 0
        while True:
            header = self._byte()
            ctype = header & 0x0F
            if ctype == _STOP:
                return fields
            delta = header >> 4
            field_id = last + delta if delta else self._zigzag()
            # a bool field carries its value in its type id and has no body
            if ctype == _TRUE:
                fields[field_id] = True
            elif ctype == _FALSE:
                fields[field_id] = False
            else:
                fields[field_id] = self.value(ctype, depth)
            last = field_id


# --- FileMetaData -------------------------------------------------------------------------


def _int(fields: dict[int, Any], field_id: int, what: str, required: bool = False) -> int | None:
    value = fields.get(field_id)
    if value is None:
        if required:
            raise _Corrupt(f"{what} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Corrupt(f"{what} is not an integer")
    return value


def _bool(fields: dict[int, Any], field_id: int) -> bool | None:
    value = fields.get(field_id)
    return value if isinstance(value, bool) else None


def _struct(value: Any, what: str) -> dict[int, Any]:
    if not isinstance(value, dict):
        raise _Corrupt(f"{what} is not a struct")
    return value


def _logical(element: dict[int, Any], name: str) -> dict[str, Any]:
    """The column's annotation, from ``logicalType`` (field 10) or else the legacy
    ``converted_type`` (field 6), with its parameters."""
    found: dict[str, Any] = {}
    logical = element.get(10)
    if logical is not None:
        union = _struct(logical, f"the logicalType of column {name!r}")
        if len(union) != 1:
            raise _Corrupt(f"the logicalType of column {name!r} sets {len(union)} members")
        ((member, body),) = union.items()
        found["logical"] = LOGICAL.get(member, f"UNRECOGNISED({member})")
        body = _struct(body, f"the logicalType of column {name!r}")
        if member == 5:  # DecimalType {1: scale, 2: precision}
            found["scale"] = _int(body, 1, f"the DECIMAL scale of {name!r}", required=True)
            found["precision"] = _int(body, 2, f"the DECIMAL precision of {name!r}", True)
        elif member in (7, 8):  # TimeType / TimestampType {1: isAdjustedToUTC, 2: unit}
            found["utc"] = _bool(body, 1)
            unit = _struct(body.get(2), f"the time unit of {name!r}")
            found["unit"] = TIME_UNITS.get(next(iter(unit), 0))
        elif member == 10:  # IntType {1: bitWidth (i8), 2: isSigned}
            found["bit_width"] = _int(body, 1, f"the INT bit width of {name!r}", required=True)
            found["signed"] = _bool(body, 2)
        return found
    converted = _int(element, 6, f"the converted_type of {name!r}")
    if converted is not None:
        found = dict(CONVERTED.get(converted, {"logical": f"UNRECOGNISED_CONVERTED({converted})"}))
    if found.get("logical") == "DECIMAL":
        found["scale"] = _int(element, 7, f"the scale of {name!r}")
        found["precision"] = _int(element, 8, f"the precision of {name!r}")
    return found


def _name(element: dict[int, Any]) -> str:
    raw = element.get(4)
    if not isinstance(raw, bytes):
        raise _Corrupt("a schema element has no name")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Corrupt(f"a schema element's name is not UTF-8: {raw!r}") from err


def _columns(schema: list[Any]) -> tuple[Column, ...]:
    """The top-level columns: the root's children, each with its subtree passed over. The
    schema is the tree flattened depth first; a group has ``num_children`` (field 5)."""
    elements = [_struct(e, "a schema element") for e in schema]
    if not elements:
        raise _Corrupt("the schema is empty")
    children = _int(elements[0], 5, "the root's num_children") or 0
    columns: list[Column] = []
    pos = 1

    def skip_subtree(index: int) -> int:
        """The index just past the element at `index` and all its descendants."""
        pending = 1
        while pending:
            if index >= len(elements):
                raise _Corrupt("the schema's num_children run past its elements")
            pending += (_int(elements[index], 5, "num_children") or 0) - 1
            index += 1
        return index

    for _ in range(children):
        if pos >= len(elements):
            raise _Corrupt("the schema has fewer elements than its root's num_children")
        element = elements[pos]
        name = _name(element)
        physical_id = _int(element, 1, f"the type of {name!r}")
        physical = None if physical_id is None else PHYSICAL.get(physical_id)
        if physical_id is not None and physical is None:
            raise _Corrupt(f"column {name!r} has unknown physical type {physical_id}")
        annotation = _logical(element, name)
        length = None
        if physical == "FIXED_LEN_BYTE_ARRAY":
            length = _int(element, 2, f"the type_length of {name!r}", required=True)
        columns.append(Column(name=name, physical=physical, length=length, **annotation))
        pos = skip_subtree(pos)
    if pos != len(elements):
        raise _Corrupt(f"the schema has {len(elements) - pos} elements beyond its tree")
    return tuple(columns)


def decode(footer: bytes) -> Footer:
    """The ``FileMetaData`` serialised in ``footer``; raises ``_Corrupt``."""
    reader = _Compact(footer)
    meta = reader.struct()
    # FileMetaData {1: version, 2: schema, 3: num_rows, 4: row_groups, 6: created_by}
    num_rows = int(_int(meta, 3, "num_rows", required=True) or 0)
    schema, groups = meta.get(2), meta.get(4)
    if not isinstance(schema, list):
        raise _Corrupt("the schema is missing")
    if not isinstance(groups, list):
        raise _Corrupt("row_groups is missing")
    # RowGroup {3: num_rows}
    rows = tuple(
        int(_int(_struct(g, "a row group"), 3, "a row group's num_rows", required=True) or 0)
        for g in groups
    )
    if num_rows < 0 or any(r < 0 for r in rows):
        raise _Corrupt("a negative row count")
    if sum(rows) != num_rows:
        raise _Corrupt(f"num_rows is {num_rows} but the row groups hold {sum(rows)}")
    created = meta.get(6)
    return Footer(
        num_rows=num_rows,
        row_groups=rows,
        columns=_columns(schema),
        created_by=created.decode("utf-8", "replace") if isinstance(created, bytes) else None,
        footer_bytes=len(footer),
    )


# --- reading a file -------------------------------------------------------------------------


def read_footer(read: ReadRange, size: int, name: str = "the file") -> Footer:
    """The footer of a Parquet file of ``size`` bytes, read through ``read`` (ranged reads of
    the file's end only). ``name`` names the file in errors (its S3 URI)."""
    if size < HEAD_BYTES + TAIL_BYTES:
        raise ParquetFooterError(f"{name} is {size} bytes: too short to be a Parquet file")
    first = min(size, FIRST_READ_BYTES)
    tail = read(size - first, first)
    if len(tail) != first:
        raise ParquetFooterError(f"{name}: asked for {first} bytes at the end, got {len(tail)}")
    magic = tail[-4:]
    if magic == ENCRYPTED_MAGIC:
        raise ParquetFooterError(f"{name} has an encrypted footer: its metadata cannot be read")
    if magic != MAGIC:
        raise ParquetFooterError(f"{name} does not end in the Parquet magic PAR1: {magic!r}")
    (length,) = struct.unpack("<I", tail[-8:-4])
    if length <= 0 or length > size - HEAD_BYTES - TAIL_BYTES or length > MAX_FOOTER_BYTES:
        raise ParquetFooterError(
            f"{name} gives a footer length of {length} bytes for a {size}-byte file: corrupt"
        )
    have = first - TAIL_BYTES  # footer bytes already read
    if length <= have:
        footer = tail[have - length : have]
    else:  # one more GET, of the footer's bytes before those already read
        missing = length - have
        head = read(size - TAIL_BYTES - length, missing)
        if len(head) != missing:
            raise ParquetFooterError(f"{name}: asked for {missing} bytes, got {len(head)}")
        footer = head + tail[:have]
    try:
        return decode(footer)
    except _Corrupt as err:
        raise ParquetFooterError(f"{name} has a corrupt footer: {err}") from err
    except RecursionError as err:  # a guard: MAX_DEPTH stops far earlier
        raise ParquetFooterError(f"{name} has a corrupt footer: nested too deep") from err


def s3_range_reader(s3: Any, bucket: str, key: str) -> ReadRange:
    """``read(start, length)`` for one S3 object: a GetObject with an HTTP ``Range`` header,
    ``bytes=<first>-<last>`` inclusive (S3 API reference, GetObject, "Range":
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)."""

    def read(start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = s3.get_object(
            Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
        )
        return bytes(response["Body"].read())

    return read
