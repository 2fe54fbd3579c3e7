"""Helpers shared by the ingest tests: write a hand-made file, compute expected keys, read tables back."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import CLICKSTREAM, ORDERS, QUARANTINE

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def event_id(fmt: str, *fields: str | None) -> str:
    """The expected hash key: sha2 of format and mapped source fields (clickstream field order)."""
    parts = [fmt, *[("\u0000" if f is None else f) for f in fields]]
    return hashlib.sha256("\u001f".join(parts).encode()).hexdigest()


def derived_order_id(user_id: str, instant: dt.datetime) -> str:
    micros = round(instant.timestamp() * 1_000_000)
    return "o-" + hashlib.sha256(f"{user_id}\u001f{micros}".encode()).hexdigest()[:24]


def utc(seconds: float) -> dt.datetime:
    """A Unix time as the naive datetime pyspark uses for it (local time of this Python process)."""
    return dt.datetime.fromtimestamp(seconds)


def local_date(naive: dt.datetime) -> dt.date:
    """The Asia/Shanghai date (the test config's time_zone) of a naive datetime as pyspark returns it."""
    return dt.datetime.fromtimestamp(naive.timestamp(), ZoneInfo("Asia/Shanghai")).date()


def clickstream(spark, cfg):
    return io.read_table(spark, cfg, CLICKSTREAM)


def orders(spark, cfg):
    return io.read_table(spark, cfg, ORDERS)


def quarantine(spark, cfg):
    """(file name, raw row, rule, detail) of every quarantined row, sorted."""
    rows = io.read_table(spark, cfg, QUARANTINE).select(
        F.regexp_extract("source_file", r"[^/]+$", 0).alias("file"), "raw_row", "rule", "detail").collect()
    return sorted(tuple(r) for r in rows)


# ------------------------------------------------------------------ generated data in each format's layout

def _epoch(series, unit: str):
    import pandas as pd

    return (pd.to_datetime(series, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(1, unit)


def write_format_files(clickstream_arrow, fmt: str, folder: Path) -> Path:
    """Write generated clickstream rows as the public data set ``fmt`` lays them out; returns the path.

    Only what the format can carry is written: Taobao and REES46 have no anonymous events or searches,
    RetailRocket only views, carts and purchases (transactionid = user and purchase instant).
    """
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    frame = clickstream_arrow.to_pandas()
    logged_in = frame[frame["user_id"].notna()]
    if fmt == "taobao":
        names = {"view": "pv", "buy": "buy", "cart": "cart", "fav": "fav"}
        rows = logged_in[logged_in["event_type"].isin(list(names))]
        out = rows.assign(behavior_type=rows["event_type"].map(names), timestamp=_epoch(rows["event_time"], "s"))
        path = folder / "UserBehavior.csv"
        out[["user_id", "item_id", "category_id", "behavior_type", "timestamp"]].to_csv(path, header=False, index=False)
    elif fmt == "retailrocket":
        names = {"view": "view", "cart": "addtocart", "buy": "transaction"}
        rows = logged_in[logged_in["event_type"].isin(list(names))]
        millis = _epoch(rows["event_time"], "ms")
        transaction = (rows["user_id"] + "-" + millis.astype(str)).where(rows["event_type"] == "buy")
        out = rows.assign(timestamp=millis, visitorid=rows["user_id"], event=rows["event_type"].map(names),
                          itemid=rows["item_id"], transactionid=transaction)
        path = folder / "events.csv"
        out[["timestamp", "visitorid", "event", "itemid", "transactionid"]].to_csv(path, index=False)
    elif fmt == "rees46":
        names = {"view": "view", "cart": "cart", "remove_cart": "remove_from_cart", "buy": "purchase"}
        rows = logged_in[logged_in["event_type"].isin(list(names))]
        out = rows.assign(
            event_time=pd_utc_text(rows["event_time"]), event_type=rows["event_type"].map(names),
            product_id=rows["item_id"], category_code="", user_session=rows["session_id"])
        path = folder / "2019-Oct.csv"
        out[["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id",
             "user_session"]].to_csv(path, index=False)
    elif fmt == "generic":
        path = folder / "events.parquet"
        pq.write_table(clickstream_arrow.drop(["dt"]), path)
    else:
        raise ValueError(fmt)
    return path


def pd_utc_text(series):
    import pandas as pd

    return pd.to_datetime(series, utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
