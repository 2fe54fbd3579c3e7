"""Files outside the lakehouse: the landed source files ingest reads, and the exports and reports people take.

Tables go through :mod:`portrait.lakehouse`; these are plain files, read with Spark (any path or URI it reads)
or written atomically on the driver's file system.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
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
