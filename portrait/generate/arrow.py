"""Arrow side of the generator: contract schemas as Arrow schemas and the column builders (ids,
word joins, nullable takes) that fill them without per-row Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from portrait import schemas


def _arrow_type(data_type: T.DataType) -> pa.DataType:
    """Arrow type that Spark reads back as ``data_type`` (timestamps are UTC instants in microseconds)."""
    simple: dict[type, pa.DataType] = {
        T.StringType: pa.string(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
        T.TimestampNTZType: pa.timestamp("us"),
        T.DateType: pa.date32(),
        T.BooleanType: pa.bool_(),
        T.ByteType: pa.int8(),
        T.ShortType: pa.int16(),
        T.IntegerType: pa.int32(),
        T.LongType: pa.int64(),
        T.FloatType: pa.float32(),
        T.DoubleType: pa.float64(),
        T.BinaryType: pa.binary(),
    }
    for spark_type, arrow in simple.items():
        if type(data_type) is spark_type:
            return arrow
    if isinstance(data_type, T.DecimalType):
        return pa.decimal128(data_type.precision, data_type.scale)
    if isinstance(data_type, T.ArrayType):
        return pa.list_(pa.field("element", _arrow_type(data_type.elementType), data_type.containsNull))
    if isinstance(data_type, T.MapType):
        return pa.map_(_arrow_type(data_type.keyType), _arrow_type(data_type.valueType))
    if isinstance(data_type, T.StructType):
        return pa.struct([_arrow_field(f) for f in data_type.fields])
    raise TypeError(f"no Arrow type for Spark type {data_type!r}")


def _arrow_field(field: T.StructField) -> pa.Field:
    comment = field.metadata.get("comment") if field.metadata else None
    metadata = {"comment": comment} if comment else None
    return pa.field(field.name, _arrow_type(field.dataType), field.nullable, metadata=metadata)


def arrow_schema(contract: schemas.TableContract | T.StructType) -> pa.Schema:
    """The Arrow schema of a table contract: same column names, order, nullability and comments."""
    struct = contract.schema if isinstance(contract, schemas.TableContract) else contract
    return pa.schema([_arrow_field(f) for f in struct.fields])


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(values: np.ndarray, prefix: str) -> pa.Array:
    """Strings ``prefix + 16 hex digits`` built in one pass over a byte matrix (no per-row Python)."""
    n = len(values)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = len(head) + 16
    raw = values.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, width), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :: 2] = _HEX_DIGITS[raw >> 4]
    chars[:, len(head) + 1 :: 2] = _HEX_DIGITS[raw & 15]
    if n * width >= 2**31:
        raise ValueError("too many ids for one Arrow string array")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1)))


def _numbered_ids(count: int, prefix: str, digits: int, order: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + zero-padded number; ``order`` gives the number of each row (default 1..count)."""
    numbers = np.arange(1, count + 1, dtype=np.int64) if order is None else order.astype(np.int64) + 1
    padded = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=digits, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), padded, "")


def _join_words(*parts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Space-join word arrays element-wise, dropping empty words."""
    joined = pc.binary_join_element_wise(*parts, " ")
    joined = pc.replace_substring_regex(joined, pattern=r"\s+", replacement=" ")
    return pc.utf8_trim_whitespace(joined)


def _take(values: pa.Array, indices: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``values[indices]`` with nulls where ``valid`` is False."""
    mask = None if valid is None else ~valid
    idx = pa.array(np.where(valid, indices, 0) if valid is not None else indices, type=pa.int64(), mask=mask)
    return values.take(idx)


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _make_table(contract: schemas.TableContract, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(contract)
    arrays = [_as_array(columns[f.name]).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
