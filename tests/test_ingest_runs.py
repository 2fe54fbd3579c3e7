"""Ingest runs: idempotent re-ingest, the quarantine threshold, schema drift, unreadable files, late data."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import files, io
from portrait.cli import main
from portrait.ingest.formats import SourceLayoutError
from portrait.ingest.report import IngestError, QuarantineThresholdError
from portrait.lakehouse import Lakehouse
from portrait.schemas import (
    CLICKSTREAM,
    IDENTITY_GRAPH,
    IDENTITY_MERGE_LOG,
    INGEST_RUNS,
    ORDERS,
    QUARANTINE,
    USER_FEATURES,
)
from portrait.stages import features, ingest
from portrait.stages.ingest import Source
from tests.conftest import LOCAL_CONF, config_environ, make_config
from tests.ingest_helpers import NOW, write
from tests.test_ingest_formats import GENERIC_JSON, generic_config

DATA_TABLES = (CLICKSTREAM, ORDERS, QUARANTINE, IDENTITY_GRAPH, IDENTITY_MERGE_LOG)


def _snapshot(spark, cfg):
    return {t.name: io.read_table(spark, cfg, t).cache() for t in DATA_TABLES}


def test_ingesting_the_same_file_twice_leaves_every_data_table_unchanged(spark, tmp_path):
    cfg = generic_config(tmp_path, "json", identity=True)
    path = str(write(tmp_path / "in" / "events.jsonl", GENERIC_JSON))
    first = ingest.load(Lakehouse(spark, cfg), Source("generic", path), now=NOW)
    before = _snapshot(spark, cfg)
    assert before["identity_graph"].count() > 0 and before["quarantine"].count() == 5
    second = ingest.load(Lakehouse(spark, cfg), Source("generic", path), now=NOW + dt.timedelta(hours=1))
    for name, frame in _snapshot(spark, cfg).items():
        assertDataFrameEqual(frame, before[name], checkRowOrder=False)
    assert (first.rows_accepted, first.rows_duplicate) == (4, 0)
    assert (second.rows_read, second.rows_accepted, second.rows_duplicate, second.rows_quarantined) == (9, 0, 4, 5)
    assert second.order_lines_accepted == 0
    # the run log records both runs (an audit of what was tried), with the counts of each
    runs = io.read_table(spark, cfg, INGEST_RUNS).orderBy("started_at").collect()
    assert [(r["run_id"], r["rows_accepted"], r["rows_duplicate"]) for r in runs] == [
        (first.run_id, 4, 0), (second.run_id, 0, 4)]
    assert runs[0]["quarantined_by_rule"] == {"malformed_row": 1, "missing_required": 2,
                                              "quantity_not_positive": 1, "unparseable_number": 1}
    assert (runs[0]["min_dt"], runs[0]["max_dt"], runs[0]["files"]) == (dt.date(2025, 11, 25),) * 2 + (1,)


def test_too_many_bad_rows_fail_the_run_and_commit_nothing(spark, cfg, tmp_path):
    path = write(tmp_path / "ub.csv", "1,100,10,pv,1511544070\n1,100,10,clik,1511544070\n")
    with pytest.raises(QuarantineThresholdError, match=r"1 of 2 rows \(50.0%\).*above ingest.max_quarantine_share"
                                                       r" = 5.0%; nothing was written") as caught:
        ingest.load(Lakehouse(spark, cfg), Source("taobao", str(path)), now=NOW)
    assert caught.value.report.quarantined_by_rule == {"unknown_event_type": 1}
    for contract in (CLICKSTREAM, ORDERS, QUARANTINE, INGEST_RUNS, IDENTITY_GRAPH):
        assert not io.table_exists(spark, io.table_ref(cfg, contract)), contract.name


def test_cli_exits_non_zero_when_the_threshold_is_exceeded(spark, tmp_path, monkeypatch, capsys):
    for key, value in config_environ(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PORTRAIT_CONF", raising=False)
    monkeypatch.chdir(tmp_path)  # not the repository: nothing may depend on the working directory
    common = ["--conf", str(LOCAL_CONF), "--date", "2017-11-25", "--format", "taobao"]  # the file's day
    path = write(tmp_path / "ub.csv", "1,100,10,clik,1511544070\n")
    assert main(["ingest", *common, "--path", str(path)]) == 3
    assert "unknown_event_type" in capsys.readouterr().err
    assert main(["ingest", *common, "--path", str(tmp_path / "nothing-here.csv")]) == 2
    assert "nothing-here.csv" in capsys.readouterr().err


RR_HEADER = "timestamp,visitorid,event,itemid,transactionid\n"


def test_schema_drift_missing_optional_and_extra_columns_are_handled_and_reported(spark, tmp_path):
    cfg = make_config(tmp_path, IDENTITY__ENABLED="false")
    # transactionid missing (optional: purchases then need none), an extra column, columns reordered
    text = "visitorid,timestamp,event,itemid,campaign\n7,1433221332117,view,355908,x\n"
    report = ingest.load(Lakehouse(spark, cfg), Source("retailrocket", str(write(tmp_path / "a" / "events.csv", text))), now=NOW)
    assert (report.rows_accepted, report.ignored_columns, report.missing_optional_columns) == (
        1, ["campaign"], ["transactionid"])
    row = io.read_table(spark, cfg, CLICKSTREAM).select("user_id", "item_id", "event_type").first()
    assert tuple(row) == ("7", "355908", "view")


def test_a_missing_required_column_or_header_is_an_error_naming_the_file(spark, cfg, tmp_path):
    no_item = write(tmp_path / "b" / "events.csv", "timestamp,visitorid,event\n1433221332117,7,view\n")
    with pytest.raises(SourceLayoutError, match=r"b/events.csv: required column\(s\) \['itemid'\] missing"):
        ingest.load(Lakehouse(spark, cfg), Source("retailrocket", str(no_item)), now=NOW)
    headerless = write(tmp_path / "c" / "events.csv", "1433221332117,7,view,1,\n")
    with pytest.raises(SourceLayoutError, match=r"c/events.csv: no header line"):
        ingest.load(Lakehouse(spark, cfg), Source("retailrocket", str(headerless)), now=NOW)
    write(tmp_path / "d" / "one.csv", RR_HEADER + "1433221332117,7,view,1,\n")
    write(tmp_path / "d" / "two.csv", "timestamp,visitorid,event,itemid\n1433221332117,7,view,1\n")
    with pytest.raises(SourceLayoutError, match="different headers"):
        ingest.load(Lakehouse(spark, cfg), Source("retailrocket", str(tmp_path / "d")), now=NOW)
    assert not io.table_exists(spark, io.table_ref(cfg, CLICKSTREAM))


def test_unreadable_files_and_encodings_are_errors_naming_the_file(spark, cfg, tmp_path):
    gbk = write(tmp_path / "gbk" / "ub.csv", b"1,100,10,pv,1511544070\n" + "用户,1,2,pv,1\n".encode("gbk"))
    with pytest.raises(files.SourceFileError, match=r"gbk/ub.csv: 1 line\(s\) are not valid UTF-8"):
        ingest.load(Lakehouse(spark, cfg), Source("taobao", str(gbk)), now=NOW)
    with pytest.raises(files.SourceFileError, match=r"cannot read text files at .*missing/x.csv"):
        ingest.load(Lakehouse(spark, cfg), Source("taobao", str(tmp_path / "missing" / "x.csv")), now=NOW)
    with pytest.raises(IngestError, match=r"no data rows in .*empty.csv"):
        ingest.load(Lakehouse(spark, cfg), Source("taobao", str(write(tmp_path / "empty.csv", "\n"))), now=NOW)


def test_a_quote_never_closed_in_a_large_file_is_an_error_naming_the_file(spark, cfg, tmp_path):
    # the open quote would take the rest of the file for one field: past the limit the run stops, writing nothing
    rows = "1433221332117,7,view,1,\n" * (files.MAX_CSV_FIELD_CHARS // 24 + 1)
    path = write(tmp_path / "open" / "events.csv", RR_HEADER + '1433221332117,7,view,"1,\n' + rows)
    with pytest.raises(files.SourceFileError, match=r"open/events.csv: a CSV field runs over 1,000,000 characters, "
                                                    r"most likely from a quote that is never closed"):
        ingest.load(Lakehouse(spark, cfg), Source("retailrocket", str(path)), now=NOW)
    assert not io.table_exists(spark, io.table_ref(cfg, CLICKSTREAM))


def test_contract_tables_carry_check_constraints(spark, tmp_path):
    cfg = make_config(tmp_path, IDENTITY__ENABLED="false")
    ref = io.ensure_table(spark, cfg, CLICKSTREAM)
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{ref.path}`").first()["properties"]
    assert "event_type IN" in properties["delta.constraints.valid_event"]
    bad = spark.createDataFrame([("e", None, None, None, dt.datetime(2026, 1, 1), "clik", None, None, None, None,
                                  None, None, None, dt.date(2026, 1, 1))], CLICKSTREAM.schema)
    with pytest.raises(Exception, match="(?i)valid_event"):
        io.merge_new_rows(spark, cfg, CLICKSTREAM, bad, [dt.date(2026, 1, 1)])


def test_late_events_land_in_their_date_and_features_recomputed_include_them_with_stitched_ids(spark, tmp_path):
    cfg = generic_config(tmp_path, "csv", **{"MAPPING__QUANTITY": "", "MAPPING__ORDER_ID": "",
                                             "MAPPING__PRICE": "", "MAPPING__SEARCH_QUERY": "",
                                             "TIME_FORMAT": "yyyy-MM-dd HH:mm:ss"}, identity=True)
    day = dt.date(2026, 11, 20)
    header = "uid,device,ts,action,sku\n"
    write(tmp_path / "day1" / "e.csv", header + ",d1,2026-11-19 09:00:00,click,s1\n"   # anonymous, before login
          + "u1,d1,2026-11-20 09:00:00,click,s2\n")
    ingest.load(Lakehouse(spark, cfg), Source("generic", str(tmp_path / "day1")), now=NOW)
    features.compute(Lakehouse(spark, cfg), day)

    def views(user):
        features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(day))
        return features.where(F.col("user_id") == user).select("views_7d").first()[0]

    assert views("u1") == 2  # the anonymous view of d1 counts for u1
    late = ingest.load(Lakehouse(spark, cfg), Source("generic", str(write(tmp_path / "late" / "e.csv",
                                                        header + "u1,d1,2026-11-18 23:00:00,click,s3\n"))), now=NOW)
    assert (late.rows_accepted, late.min_dt, late.max_dt) == (1, dt.date(2026, 11, 18), dt.date(2026, 11, 18))
    stored = io.read_table(spark, cfg, CLICKSTREAM).groupBy("dt").count().orderBy("dt").collect()
    assert [tuple(r) for r in stored] == [(dt.date(2026, 11, 18), 1), (dt.date(2026, 11, 19), 1),
                                          (dt.date(2026, 11, 20), 1)]
    assert views("u1") == 2  # the stored features of a past date do not change by themselves
    features.compute(Lakehouse(spark, cfg), day)
    assert views("u1") == 3
