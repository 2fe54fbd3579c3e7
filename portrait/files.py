"""Files outside the lakehouse: the landed source files ingest reads, and the exports and reports people take.

Tables go through :mod:`portrait.lakehouse`; these are plain files, read with Spark (any path or URI it reads)
or written atomically on the driver's file system.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T


class SourceFileError(ValueError):
    """An input file cannot be found or read; the message names the file or path and what to do."""


def _load_files(spark: SparkSession, path: str, what: str, load) -> DataFrame:
    try:
        return load()
    except AnalysisException as exc:
        reason = str(exc).splitlines()[0]
        raise SourceFileError(f"cannot read {what} at {path}: {reason}. Check the path (a file, a glob or a "
                              f"folder of files) and that this machine can read it.") from None


def read_text_files(spark: SparkSession, path: str) -> DataFrame:
    """The lines of the file(s) at ``path`` (file, glob or folder; .gz allowed), as UTF-8 text.

    Columns: ``value`` (the line, without line break) and ``source_file`` (full URI of its file). Bytes that
    are not UTF-8 arrive unchanged (``is_valid_utf8`` finds them). Raises :class:`SourceFileError` naming
    the path when nothing is there.
    """
    frame = _load_files(spark, path, "text files",
                        lambda: spark.read.format("text").schema("value STRING").load(path))
    return frame.select("value", F.col("_metadata.file_path").alias("source_file"))


# A quote that is never closed makes the rest of a CSV file one field. Past this many characters in one field the
# read fails, naming the file, rather than taking the rest of a large file for one value.
MAX_CSV_FIELD_CHARS = 1_000_000


def read_csv_records(spark: SparkSession, paths: Sequence[str], schema: str, options: dict[str, str]) -> DataFrame:
    """The records of the CSV files ``paths`` (file URIs as ``source_file`` gives them), parsed by Spark's CSV
    reader with ``options`` into ``schema`` (DDL), a record going on over line breaks inside quoted fields.

    Columns: the schema's and ``source_file``. Each file is one task (it cannot be split at an arbitrary line).
    Blank lines are skipped; bytes that are not UTF-8 become U+FFFD (check them as text lines first). A field
    over :data:`MAX_CSV_FIELD_CHARS` characters fails the read (see :func:`collect_from_files`).
    """
    reader = (spark.read.format("csv").schema(schema).options(**options)
              .option("multiLine", "true").option("header", "false").option("encoding", "UTF-8")
              .option("maxCharsPerColumn", str(MAX_CSV_FIELD_CHARS)))
    frame = _load_files(spark, ", ".join(paths), "CSV files", lambda: reader.load(list(paths)))
    return frame.select("*", F.col("_metadata.file_path").alias("source_file"))


def collect_from_files(frame: DataFrame, path: str) -> list[Row]:
    """``frame.collect()`` of a (small) summary of the files at ``path``, a read failure raised as
    :class:`SourceFileError` naming the file and what to do."""
    try:
        return frame.collect()
    except (PySparkException, Py4JJavaError) as exc:
        text = str(exc)
        named = re.search(r"reading file (\S+?)\.?(\s|$)", text)
        where = named.group(1) if named else path
        if "exceeds the maximum number of characters" in text:
            raise SourceFileError(
                f"{where}: a CSV field runs over {MAX_CSV_FIELD_CHARS:,} characters, most likely from a quote "
                "that is never closed (it takes the rest of the file for one field). Fix the quoting: a quoted "
                'field ends with a quote, and a quote inside it is written twice ("").') from None
        reason = next((line.lstrip(": ") for line in text.strip().splitlines()
                       if line.strip() and not line.startswith("An error occurred while calling")), text)
        raise SourceFileError(f"cannot read the files at {where}: {reason}") from None


def read_csv_header(spark: SparkSession, path: str, delimiter: str) -> list[str]:
    """The column names in the header line of the (first) CSV file at ``path``; only that line is read."""
    reader = spark.read.option("header", "true").option("sep", delimiter).option("inferSchema", "false")
    return _load_files(spark, path, "CSV files", lambda: reader.csv(path)).columns


def read_parquet_files(spark: SparkSession, path: str) -> DataFrame:
    """The records of the Parquet file(s) at ``path`` with ``source_file``; schemas of several files merged.

    Parquet files carry their own schema, so none is imposed here; the caller checks the columns it needs.
    """
    frame = _load_files(spark, path, "Parquet files",
                        lambda: spark.read.option("mergeSchema", "true").parquet(path))
    return frame.select("*", F.col("_metadata.file_path").alias("source_file"))


EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")


def write_single_file(frame: DataFrame, path: str, file_format: str) -> Path:
    """Write ``frame`` as ONE csv (with header) or parquet file at local ``path``, in the frame's row order.

    Spark writes a folder of part files, so the rows are written with one task into a staging folder beside
    ``path`` and its single part file is renamed onto ``path``: a reader never sees a half-written file, and
    an existing file is replaced only when the new one is complete. Array columns are written as text joined
    by ``|`` in CSV (CSV has no arrays).
    """
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {file_format!r}; use one of {', '.join(EXPORT_FORMATS)}")
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise SourceFileError(f"cannot write the export to {target}: it is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        frame = frame.select(*[
            F.array_join(F.col(f.name), "|").alias(f.name) if isinstance(f.dataType, T.ArrayType) else F.col(f.name)
            for f in frame.schema.fields])
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        writer = frame.coalesce(1).write.mode("overwrite")
        if file_format == "csv":
            writer.option("header", "true").csv(str(staging / "out"))
        else:
            writer.parquet(str(staging / "out"))
        (part,) = sorted((staging / "out").glob(f"part-*.{file_format}*"))
        part.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_text_file(path: str | Path, text: str) -> Path:
    """Write a UTF-8 text file (a report) atomically: a temporary file beside it, then a rename."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target
