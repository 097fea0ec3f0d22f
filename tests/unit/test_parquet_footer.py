"""The Parquet footer reader, checked against pyarrow (the independent reference reader).

Files are written by pyarrow, or, for the legacy annotations and for fields a reader must skip,
built by hand from parquet-format's parquet.thrift with a few lines of Thrift compact protocol
(below) and read by pyarrow too. Expected values come from pyarrow's reading of the same file,
or from parquet-format's LogicalTypes.md where it says what a legacy annotation means.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import struct
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rds_s3_export import parquet_footer as pf
from tests.helpers import spy_calls
from tests.unit.conftest import BUCKET

# --- the independent side: what pyarrow reads ------------------------------------------------

_UNITS = {"milliseconds": "MILLIS", "microseconds": "MICROS", "nanoseconds": "NANOS"}
_LOGICAL = {  # pyarrow's LogicalType JSON "Type" -> the manifest's logical name
    "None": None,
    "String": "STRING",
    "Int": "INT",
    "Decimal": "DECIMAL",
    "Date": "DATE",
    "Time": "TIME",
    "Timestamp": "TIMESTAMP",
    "JSON": "JSON",
    "BSON": "BSON",
    "Enum": "ENUM",
    "UUID": "UUID",
    "Null": "NULL",
    "Float16": "FLOAT16",
}


def _expected(column: Any) -> dict[str, Any]:
    """The manifest's parquet object for one leaf column, from pyarrow's ColumnSchema."""
    logical = json.loads(column.logical_type.to_json())
    kind = _LOGICAL[logical["Type"]]
    physical = column.physical_type
    return {
        "physical": physical,
        "logical": kind,
        "precision": logical.get("precision") if kind == "DECIMAL" else None,
        "scale": logical.get("scale") if kind == "DECIMAL" else None,
        "length": column.length if physical == "FIXED_LEN_BYTE_ARRAY" else None,
        "unit": _UNITS[logical["timeUnit"]] if kind in ("TIME", "TIMESTAMP") else None,
        "utc": logical["isAdjustedToUTC"] if kind in ("TIME", "TIMESTAMP") else None,
        "bit_width": logical.get("bitWidth") if kind == "INT" else None,
        "signed": logical.get("isSigned") if kind == "INT" else None,
    }


def _write(table: pa.Table, **options: Any) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


class _File:
    """A file in memory, read through ranged reads that are counted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def read(self, start: int, length: int) -> bytes:
        assert start >= 0 and start + length <= len(self.data)
        self.reads.append((start, length))
        return self.data[start : start + length]

    def footer(self) -> pf.Footer:
        return pf.read_footer(self.read, len(self.data), "s3://b/k.parquet")


def _assert_like_pyarrow(data: bytes, footer: pf.Footer) -> None:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert footer.num_rows == meta.num_rows
    assert footer.row_groups == tuple(
        meta.row_group(i).num_rows for i in range(meta.num_row_groups)
    )
    assert footer.created_by == meta.created_by
    assert footer.footer_bytes == meta.serialized_size
    schema = meta.schema
    assert [c.name for c in footer.columns] == [schema.column(i).name for i in range(len(schema))]
    for i, column in enumerate(footer.columns):
        assert column.as_manifest() == _expected(schema.column(i)), column.name


ROWS = 10


def _many_types() -> pa.Table:
    n = ROWS
    ts = [dt.datetime(2024, 1, 2, 3, 4, 5, 123456) + dt.timedelta(days=i) for i in range(n)]
    return pa.table(
        {
            "boolean": pa.array([i % 2 == 0 for i in range(n)]),
            "int8": pa.array(range(n), pa.int8()),
            "int16": pa.array(range(n), pa.int16()),
            "int32": pa.array(range(n), pa.int32()),
            "int64": pa.array(range(n), pa.int64()),
            "uint8": pa.array(range(n), pa.uint8()),
            "uint16": pa.array(range(n), pa.uint16()),
            "uint32": pa.array(range(n), pa.uint32()),
            "uint64": pa.array([2**64 - 1 - i for i in range(n)], pa.uint64()),
            "float": pa.array([i / 3 for i in range(n)], pa.float32()),
            "double": pa.array([i / 7 for i in range(n)], pa.float64()),
            "float16": pa.array([i / 2 for i in range(n)], pa.float16()),
            "string": pa.array([f"s{i} é 🙂" if i else None for i in range(n)]),
            "large string": pa.array([f"x{i}" for i in range(n)], pa.large_string()),
            "binary": pa.array([bytes([i, 255]) for i in range(n)], pa.binary()),
            "fixed": pa.array([bytes([i]) * 5 for i in range(n)], pa.binary(5)),
            "dec_9_2": pa.array([Decimal("1234567.89")] * n, pa.decimal128(9, 2)),
            "dec_18_4": pa.array([Decimal("12345678901234.5678")] * n, pa.decimal128(18, 4)),
            "dec_38_10": pa.array([Decimal("9" * 28 + "." + "9" * 10)] * n, pa.decimal128(38, 10)),
            "dec_20_0": pa.array([Decimal(2**64 - 1)] * n, pa.decimal128(20, 0)),
            "date": pa.array([dt.date(1000, 1, 1), dt.date(9999, 12, 31)] * (n // 2), pa.date32()),
            "time_ms": pa.array([dt.time(23, 59, 59, 999000)] * n, pa.time32("ms")),
            "time_us": pa.array([dt.time(1, 2, 3, 456789)] * n, pa.time64("us")),
            "time_ns": pa.array([i * 10**9 for i in range(n)], pa.time64("ns")),
            "ts_ms": pa.array(ts, pa.timestamp("ms")),
            "ts_us": pa.array(ts, pa.timestamp("us")),
            "ts_ns": pa.array(ts, pa.timestamp("ns")),
            "ts_ms_utc": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "ts_us_utc": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "ts_ns_zone": pa.array(ts, pa.timestamp("ns", tz="Europe/Paris")),
            "json": pa.array(['{"a": 1}'] * n, pa.json_()),
            "uuid": pa.array([bytes(range(16))] * n, pa.uuid()),
            "nulls": pa.array([None] * n, pa.null()),
            "dictionary": pa.array(["a", "b"] * (n // 2)).dictionary_encode(),
            "Mixed Case $name": pa.array(range(n), pa.int32()),
        }
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"store_decimal_as_integer": True},
        {"version": "1.0"},
        {"version": "2.4", "compression": "gzip"},
        {"version": "2.6", "compression": "gzip", "data_page_version": "2.0"},
        {"use_dictionary": False, "write_statistics": False, "compression": "none"},
    ],
    ids=["defaults", "decimals-as-integers", "format-1.0", "format-2.4-gzip", "v2-pages", "plain"],
)
def test_every_type_reads_as_pyarrow_reads_it(options: dict[str, Any]) -> None:
    data = _write(_many_types(), **options)
    footer = _File(data).footer()
    _assert_like_pyarrow(data, footer)
    assert footer.num_rows == ROWS
    print(f"{len(footer.columns)} columns compared with pyarrow ({options or 'defaults'})")


def test_decimals_are_stored_as_int32_int64_or_fixed_by_precision() -> None:
    # the same decimals, stored as integers where they fit (parquet-format LogicalTypes.md,
    # DECIMAL: int32 for precision <= 9, int64 for <= 18); pyarrow says how it wrote them
    footer = _File(_write(_many_types(), store_decimal_as_integer=True)).footer()
    by_name = {c.name: c for c in footer.columns}
    assert (by_name["dec_9_2"].physical, by_name["dec_9_2"].precision) == ("INT32", 9)
    assert (by_name["dec_18_4"].physical, by_name["dec_18_4"].scale) == ("INT64", 4)
    assert by_name["dec_38_10"].physical == "FIXED_LEN_BYTE_ARRAY"
    assert by_name["dec_38_10"].length == 16
    assert (by_name["dec_20_0"].precision, by_name["dec_20_0"].scale) == (20, 0)


def test_row_groups_and_the_row_count() -> None:
    table = pa.table({"id": pa.array(range(1000), pa.int64()), "s": [str(i) for i in range(1000)]})
    data = _write(table, row_group_size=300)
    footer = _File(data).footer()
    _assert_like_pyarrow(data, footer)
    assert footer.row_groups == (300, 300, 300, 100)
    assert footer.num_rows == 1000


def test_an_empty_file_has_no_rows() -> None:
    table = pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())})
    data = _write(table)
    footer = _File(data).footer()
    _assert_like_pyarrow(data, footer)
    assert footer.num_rows == 0 and sum(footer.row_groups) == 0
    assert [c.logical for c in footer.columns] == [None, "STRING"]


def test_nested_columns_are_top_level_groups_and_the_columns_after_them_are_right() -> None:
    table = pa.table(
        {
            "before": pa.array([1, 2], pa.int32()),
            "list": pa.array([[1, 2], []], pa.list_(pa.int32())),
            "struct": pa.array([{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]),
            "map": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
            "after": pa.array(["a", "b"]),
        }
    )
    data = _write(table)
    footer = _File(data).footer()
    arrow = pq.ParquetFile(io.BytesIO(data)).schema_arrow
    assert [c.name for c in footer.columns] == arrow.names
    by_name = {c.name: c for c in footer.columns}
    assert by_name["list"].physical is None and by_name["list"].logical == "LIST"
    assert by_name["map"].physical is None and by_name["map"].logical == "MAP"
    assert by_name["struct"].physical is None and by_name["struct"].logical is None
    assert (by_name["before"].physical, by_name["after"].logical) == ("INT32", "STRING")
    assert footer.num_rows == 2


def test_a_small_footer_takes_one_read_of_the_files_end() -> None:
    big = pa.table({"blob": pa.array([bytes(200_000)], pa.binary())})
    f = _File(_write(big, compression="none"))
    f.footer()
    assert f.reads == [(len(f.data) - pf.FIRST_READ_BYTES, pf.FIRST_READ_BYTES)]


def test_a_footer_larger_than_the_first_read_takes_exactly_one_more() -> None:
    # 1,500 columns: a footer of a few hundred KB, beyond the first 64 KiB read
    table = pa.table({f"c{i}": pa.array([i], pa.int64()) for i in range(1500)})
    f = _File(_write(table))
    footer = f.footer()
    meta = pq.ParquetFile(io.BytesIO(f.data)).metadata
    length = meta.serialized_size
    assert length > pf.FIRST_READ_BYTES
    size = len(f.data)
    first = (size - pf.FIRST_READ_BYTES, pf.FIRST_READ_BYTES)
    missing = length - (pf.FIRST_READ_BYTES - pf.TAIL_BYTES)
    assert f.reads == [first, (size - pf.TAIL_BYTES - length, missing)]
    # the two reads are the footer and its tail, nothing more
    assert sum(n for _, n in f.reads) == length + pf.TAIL_BYTES
    assert len(footer.columns) == 1500 and footer.num_rows == 1
    _assert_like_pyarrow(f.data, footer)


def test_s3_is_asked_for_byte_ranges_only(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 4 MB Parquet file in S3 (random bytes do not compress)
    table = pa.table({"blob": pa.array([os.urandom(1_000_000) for _ in range(4)], pa.binary())})
    data = _write(table, row_group_size=1)
    s3.put_object(Bucket=BUCKET, Key="e/t/1/part-00000-x.gz.parquet", Body=data)
    asked = spy_calls(s3, monkeypatch, "get_object")

    # When its footer is read
    reader = pf.s3_range_reader(s3, BUCKET, "e/t/1/part-00000-x.gz.parquet")
    footer = pf.read_footer(reader, len(data), "the file")

    # Then every GetObject had a Range, and the bytes asked for are the file's last 64 KiB
    assert asked and all(p["Range"].startswith("bytes=") for p in asked)
    ranges = [tuple(int(x) for x in p["Range"][len("bytes=") :].split("-")) for p in asked]
    requested = sum(last - first + 1 for first, last in ranges)
    assert ranges == [(len(data) - pf.FIRST_READ_BYTES, len(data) - 1)]
    assert requested * 60 < len(data)
    print(f"footer read with {len(asked)} ranged GET: {requested} of {len(data)} bytes")
    assert footer.num_rows == 4 and footer.row_groups == (1, 1, 1, 1)


# --- hand-built footers: Thrift compact protocol, from parquet.thrift ------------------------

STOP, TRUE, FALSE, I8, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _value(ctype: int, v: Any) -> bytes:
    if ctype == I8:
        return bytes([v & 0xFF])
    if ctype in (I16, I32, I64):
        return _zigzag(v)
    if ctype == DOUBLE:
        return struct.pack("<d", v)
    if ctype == BINARY:
        return _varint(len(v)) + v
    if ctype in (LIST, SET):
        etype, items = v
        head = bytes([(len(items) << 4) | etype]) if len(items) < 15 else bytes([0xF0 | etype])
        head += b"" if len(items) < 15 else _varint(len(items))
        if etype == TRUE:  # a bool element is one byte: 1 true, 2 false
            return head + bytes(1 if item else 2 for item in items)
        return head + b"".join(_value(etype, item) for item in items)
    if ctype == MAP:
        ktype, vtype, pairs = v
        if not pairs:
            return b"\x00"
        body = b"".join(_value(ktype, k) + _value(vtype, x) for k, x in pairs)
        return _varint(len(pairs)) + bytes([(ktype << 4) | vtype]) + body
    if ctype == STRUCT:
        return _struct(v)
    raise AssertionError(ctype)


def _struct(fields: dict[int, tuple[int, Any]]) -> bytes:
    out, last = bytearray(), 0
    for fid in sorted(fields):
        ctype, v = fields[fid]
        if ctype == TRUE:
            ctype = TRUE if v else FALSE
        delta = fid - last
        out += bytes([(delta << 4) | ctype]) if 0 < delta <= 15 else bytes([ctype]) + _zigzag(fid)
        if ctype not in (TRUE, FALSE):
            out += _value(ctype, v)
        last = fid
    return bytes(out + b"\x00")


def _file(footer: bytes) -> bytes:
    return b"PAR1" + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _element(name: str, physical: int, converted: int | None = None, **extra: Any) -> dict:
    fields: dict[int, tuple[int, Any]] = {
        1: (I32, physical),
        3: (I32, 1),
        4: (BINARY, name.encode()),
    }
    if converted is not None:
        fields[6] = (I32, converted)
    for fid, value in extra.items():
        fields[int(fid.lstrip("f"))] = value
    return fields


# a value of every compact type, for a field no reader knows (id 99 in each struct)
UNKNOWN = (
    STRUCT,
    {
        1: (I8, -5),
        2: (I16, -300),
        3: (DOUBLE, 2.5),
        4: (BINARY, b"\x00\xff" * 20),
        5: (LIST, (TRUE, [True, False, True])),
        6: (SET, (I64, list(range(20)))),
        7: (MAP, (BINARY, STRUCT, [(b"k", {1: (I32, 7)}), (b"l", {})])),
        8: (TRUE, True),
        9: (TRUE, False),
        40: (LIST, (STRUCT, [{2: (LIST, (I32, [1, 2]))}])),
    },
)

# (name, physical type, converted type, extra fields) -> what LogicalTypes.md's backward-
# compatibility tables say the legacy annotation means
LEGACY = [
    ("utf8", 6, 0, {}, {"logical": "STRING"}),
    ("dec_int64", 2, 5, {"f7": (I32, 4), "f8": (I32, 18)}, {"logical": "DECIMAL", "scale": 4}),
    ("dec_fixed", 7, 5, {"f2": (I32, 16), "f7": (I32, 10), "f8": (I32, 38)}, {"length": 16}),
    ("date", 1, 6, {}, {"logical": "DATE"}),
    ("time_ms", 1, 7, {}, {"logical": "TIME", "unit": "MILLIS", "utc": True}),
    ("time_us", 2, 8, {}, {"logical": "TIME", "unit": "MICROS", "utc": True}),
    ("ts_ms", 2, 9, {}, {"logical": "TIMESTAMP", "unit": "MILLIS", "utc": True}),
    ("ts_us", 2, 10, {}, {"logical": "TIMESTAMP", "unit": "MICROS", "utc": True}),
    ("uint8", 1, 11, {}, {"logical": "INT", "bit_width": 8, "signed": False}),
    ("uint64", 2, 14, {}, {"logical": "INT", "bit_width": 64, "signed": False}),
    ("int16", 1, 16, {}, {"logical": "INT", "bit_width": 16, "signed": True}),
    ("json", 6, 19, {}, {"logical": "JSON"}),
    ("bson", 6, 20, {}, {"logical": "BSON"}),
    ("enum", 6, 4, {}, {"logical": "ENUM"}),
    ("int96", 3, None, {"f99": UNKNOWN}, {"physical": "INT96", "logical": None}),
]


def _legacy_footer(num_rows: int = 0, groups: list[int] | None = None) -> bytes:
    root = {4: (BINARY, b"schema"), 5: (I32, len(LEGACY)), 99: UNKNOWN}
    elements = [root] + [_element(n, p, c, **x) for n, p, c, x, _ in LEGACY]
    return _struct(
        {
            1: (I32, 1),
            2: (LIST, (STRUCT, elements)),
            3: (I64, num_rows),
            4: (LIST, (STRUCT, [{2: (I64, 0), 3: (I64, n)} for n in groups or []])),
            6: (BINARY, b"hand-built from parquet.thrift"),
            99: UNKNOWN,
        }
    )


def test_legacy_annotations_and_unknown_fields() -> None:
    data = _file(_legacy_footer())
    footer = _File(data).footer()
    # pyarrow reads the same file (and skips the same unknown fields) the same way
    _assert_like_pyarrow(data, footer)
    for column, (name, _, _, _, wanted) in zip(footer.columns, LEGACY, strict=True):
        assert column.name == name
        assert {k: column.as_manifest()[k] for k in wanted} == wanted, name
    decimal = footer.columns[1]
    assert (decimal.physical, decimal.precision, decimal.scale) == ("INT64", 18, 4)
    assert footer.created_by == "hand-built from parquet.thrift"


def test_a_logical_type_this_reader_does_not_know_is_named_not_dropped() -> None:
    elements = [
        {4: (BINARY, b"schema"), 5: (I32, 1)},
        _element("future", 6, None, f10=(STRUCT, {30: (STRUCT, {1: (I32, 3)})})),
    ]
    footer = _struct(
        {1: (I32, 2), 2: (LIST, (STRUCT, elements)), 3: (I64, 0), 4: (LIST, (STRUCT, []))}
    )
    (column,) = _File(_file(footer)).footer().columns
    assert (column.physical, column.logical) == ("BYTE_ARRAY", "UNRECOGNISED(30)")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"hello, this is not a parquet file at all", "does not end in the Parquet magic"),
        (b"PAR1PAR1", "too short"),
        (b"PAR1" + b"x" * 20 + struct.pack("<I", 10_000) + b"PAR1", "footer length of 10000"),
        (b"PAR1" + b"x" * 20 + struct.pack("<I", 0) + b"PAR1", "footer length of 0"),
        (b"PAR1" + b"x" * 20 + struct.pack("<I", 20) + b"PARE", "encrypted footer"),
        (_file(b"\x19\xfc" + b"\xff" * 30), "corrupt footer"),
        (_file(_legacy_footer()[:-40]), "corrupt footer"),
        (_file(_legacy_footer(num_rows=5, groups=[2, 2])), "num_rows is 5 but the row groups"),
        (_file(_struct({1: (I32, 1), 3: (I64, 0)})), "schema is missing"),
        (
            _file(
                _struct(
                    {1: (I32, 1), 2: (LIST, (STRUCT, [])), 3: (I64, 0), 4: (LIST, (STRUCT, []))}
                )
            ),
            "schema is empty",
        ),
        (
            _file(
                _struct(
                    {
                        1: (I32, 1),
                        2: (LIST, (STRUCT, [{4: (BINARY, b"r"), 5: (I32, 3)}])),
                        3: (I64, 0),
                        4: (LIST, (STRUCT, [])),
                    }
                )
            ),
            "fewer elements",
        ),
        (_file(b"\x1c" * 200 + b"\x00" * 200), "nested deeper"),
        (_file(b"\x19\xf9" + _varint(10**9)), "cannot fit"),
    ],
    ids=[
        "not-parquet",
        "too-short",
        "length-beyond-file",
        "length-zero",
        "encrypted",
        "garbage",
        "truncated",
        "row-counts-disagree",
        "no-schema",
        "empty-schema",
        "schema-short",
        "too-deep",
        "huge-list",
    ],
)
def test_a_corrupt_file_is_a_named_error_naming_the_file(data: bytes, words: str) -> None:
    with pytest.raises(pf.ParquetFooterError, match=words) as err:
        _File(data).footer()
    assert "s3://b/k.parquet" in str(err.value)


def test_a_short_answer_from_storage_is_an_error() -> None:
    data = _write(pa.table({"a": [1]}))
    with pytest.raises(pf.ParquetFooterError, match="asked for"):
        pf.read_footer(lambda start, length: data[start : start + length - 1], len(data), "f")
