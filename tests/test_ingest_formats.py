"""Each source format: a hand-made file with normal rows and every kind of bad row, exact results; CSV records over
several lines and doubled quotes (RFC 4180); ids the erasure could not name."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import erasure
from portrait.lakehouse import Lakehouse
from portrait.schemas import CLICKSTREAM, MAX_ID_LENGTH, ORDERS, id_problem, id_problem_column
from portrait.stages import ingest
from portrait.stages.ingest import Source
from tests.conftest import make_config
from tests.ingest_helpers import (
    NOW,
    clickstream,
    derived_order_id,
    event_id,
    local_date,
    orders,
    quarantine,
    utc,
    write,
)


@pytest.fixture
def lax(tmp_path):
    """Config that accepts any share of bad rows, so a file of mostly bad rows still loads."""
    return make_config(tmp_path, INGEST__MAX_QUARANTINE_SHARE="1.0", IDENTITY__ENABLED="false")


def _events(spark, rows):
    return spark.createDataFrame(rows, CLICKSTREAM.schema)


def _order_lines(spark, rows):
    return spark.createDataFrame(rows, ORDERS.schema)


def _event(eid, user, t, etype, item, cat=None, brand=None, price=None, session=None, anon=None, query=None):
    return (eid, user, anon, session, t, etype, item, cat, brand, price, query, None, None, local_date(t))


TAOBAO = """\
1,100,10,pv,1511544070
1,101,10,buy,1511544080
2,100,10,cart,1511600000
2,100,10,fav,1511600000
1,100,10,pv,1511544070

3,100,10,pv
,100,10,pv,1511544070
4,100,10,pv,15115x4070
4,100,10,clik,1511544070
4,100,10,pv,946684799
4,100,10,pv,4102444800
4,100,10,pv,99999999999999
"""


def test_taobao(spark, lax, tmp_path):
    report = ingest.load(Lakehouse(spark, lax), Source("taobao", str(write(tmp_path / "in" / "UserBehavior.csv", TAOBAO))), now=NOW)

    def tb(user, item, cat, behaviour, ts):
        return event_id("taobao", user, ts, behaviour, item, cat)

    expected = _events(spark, [
        _event(tb("1", "100", "10", "pv", "1511544070"), "1", utc(1511544070), "view", "100", "10"),
        _event(tb("1", "101", "10", "buy", "1511544080"), "1", utc(1511544080), "buy", "101", "10"),
        _event(tb("2", "100", "10", "cart", "1511600000"), "2", utc(1511600000), "cart", "100", "10"),
        _event(tb("2", "100", "10", "fav", "1511600000"), "2", utc(1511600000), "fav", "100", "10"),
    ])
    assertDataFrameEqual(clickstream(spark, lax), expected)
    bought = utc(1511544080)
    assertDataFrameEqual(orders(spark, lax), _order_lines(spark, [
        (derived_order_id("1", dt.datetime.fromtimestamp(1511544080, dt.timezone.utc)), 1, "1", bought, "paid",
         "101", "10", 1, 0.0, 0.0, local_date(bought)),
    ]))
    window = "[2000-01-01T00:00:00+00:00, 2026-11-28T00:00:00+00:00]"
    out_of_range = f" is outside the plausible range {window} (ingest.min_event_date, max_future_hours)"
    assert quarantine(spark, lax) == sorted([
        ("UserBehavior.csv", "3,100,10,pv", "malformed_row", "expected 5 fields separated by ','"),
        ("UserBehavior.csv", ",100,10,pv,1511544070", "missing_required", "column 'user_id' is empty"),
        ("UserBehavior.csv", "4,100,10,pv,15115x4070", "unparseable_number",
         "column 'timestamp' value '15115x4070' is not a whole number of seconds"),
        ("UserBehavior.csv", "4,100,10,clik,1511544070", "unknown_event_type",
         "column 'behavior_type' value 'clik' is not one of pv, buy, cart, fav"),
        ("UserBehavior.csv", "4,100,10,pv,946684799", "time_out_of_range",
         "event time 2000-01-01 07:59:59+08:00" + out_of_range),
        ("UserBehavior.csv", "4,100,10,pv,4102444800", "time_out_of_range",
         "event time 2100-01-01 08:00:00+08:00" + out_of_range),
        ("UserBehavior.csv", "4,100,10,pv,99999999999999", "time_out_of_range",
         "column 'timestamp' value '99999999999999' is not a plausible time"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_duplicate, report.rows_quarantined) == (12, 4, 1, 7)
    assert report.quarantined_by_rule == {"malformed_row": 1, "missing_required": 1, "unparseable_number": 1,
                                          "unknown_event_type": 1, "time_out_of_range": 3}
    assert report.order_lines_accepted == 1 and report.files == 1
    assert (report.min_dt, report.max_dt) == (dt.date(2017, 11, 25), dt.date(2017, 11, 25))


RETAILROCKET = """\
timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433221999827,111016,addtocart,318965,
1433222276276,111016,transaction,318965,4000
1433222276276,111016,transaction,253185,4000
1433221955914,483717,view,253185,4000
1433222276276,222222,transaction,999,
1433222276276,333333,transaction,1,5000
1433222276276,444444,transaction,2,5000
1433221332117,257597,view
1433221332117,,view,355908,
abc,257597,view,355908,
1433221332117,257597,click,355908,
"""


def test_retailrocket(spark, lax, tmp_path):
    report = ingest.load(Lakehouse(spark, lax), Source("retailrocket", str(write(tmp_path / "events.csv", RETAILROCKET))), now=NOW)

    def rr(ts, visitor, event, item, transaction=None):
        return event_id("retailrocket", visitor, ts, event, item, transaction)

    paid = utc(1433222276.276)
    assertDataFrameEqual(clickstream(spark, lax), _events(spark, [
        _event(rr("1433221332117", "257597", "view", "355908"), "257597", utc(1433221332.117), "view", "355908"),
        _event(rr("1433221999827", "111016", "addtocart", "318965"), "111016", utc(1433221999.827), "cart", "318965"),
        _event(rr("1433222276276", "111016", "transaction", "318965", "4000"), "111016", paid, "buy", "318965"),
        _event(rr("1433222276276", "111016", "transaction", "253185", "4000"), "111016", paid, "buy", "253185"),
    ]))
    assertDataFrameEqual(orders(spark, lax), _order_lines(spark, [
        ("4000", 1, "111016", paid, "paid", "253185", None, 1, 0.0, 0.0, local_date(paid)),
        ("4000", 2, "111016", paid, "paid", "318965", None, 1, 0.0, 0.0, local_date(paid)),
    ]))
    assert quarantine(spark, lax) == sorted([
        ("events.csv", "1433221955914,483717,view,253185,4000", "inconsistent_order",
         "column 'transactionid' value '4000' on a non-purchase event"),
        ("events.csv", "1433222276276,222222,transaction,999,", "inconsistent_order",
         "column 'transactionid' is empty on a purchase"),
        ("events.csv", "1433222276276,333333,transaction,1,5000", "inconsistent_order",
         "column 'transactionid' value '5000' belongs to 2 different users"),
        ("events.csv", "1433222276276,444444,transaction,2,5000", "inconsistent_order",
         "column 'transactionid' value '5000' belongs to 2 different users"),
        ("events.csv", "1433221332117,257597,view", "malformed_row", "expected 5 fields separated by ','"),
        ("events.csv", "1433221332117,,view,355908,", "missing_required", "column 'visitorid' is empty"),
        ("events.csv", "abc,257597,view,355908,", "unparseable_number",
         "column 'timestamp' value 'abc' is not a whole number of millis"),
        ("events.csv", "1433221332117,257597,click,355908,", "unknown_event_type",
         "column 'event' value 'click' is not one of view, addtocart, transaction"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_duplicate, report.rows_quarantined) == (12, 4, 0, 8)
    assert report.quarantined_by_rule == {"inconsistent_order": 4, "malformed_row": 1, "missing_required": 1,
                                          "unparseable_number": 1, "unknown_event_type": 1}


REES46 = """\
event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde
2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances.water_heater,aqua,33.20,554748717,9333dfbd
2019-10-01 00:00:10 UTC,purchase,3900821,2053013552326770905,appliances.water_heater,aqua,33.20,554748717,9333dfbd
2019-10-01 00:00:20 UTC,remove_from_cart,17200506,2053013559792632471,furniture.sofa,,543.10,519107250,566511c2
"2019-10-01 00:00:30 UTC",view,1,2,,"brand, with comma",1.5,6,s6
2019-13-01 00:00:00 UTC,view,1,2,,b,1.0,5,s
2019-10-01 00:00:00 UTC,view,1,2,,b,abc,5,s
2019-10-01 00:00:00 UTC,view,1,2,,b,-1.0,5,s
2019-10-01 00:00:00 UTC,view,,2,,b,1.0,5,s
2019-10-01 00:00:00 UTC,wishlist,1,2,,b,1.0,5,s
"""


def test_rees46(spark, lax, tmp_path):
    report = ingest.load(Lakehouse(spark, lax), Source("rees46", str(write(tmp_path / "2019-Oct.csv", REES46))), now=NOW)

    def rs(t, etype, product, cat, brand, price, user, session):
        return event_id("rees46", user, session, t, etype, product, cat, brand, price)

    def at(seconds):
        return utc(dt.datetime(2019, 10, 1, tzinfo=dt.timezone.utc).timestamp() + seconds)

    t0 = "2019-10-01 00:00:{:02d} UTC"
    assertDataFrameEqual(clickstream(spark, lax), _events(spark, [
        _event(rs(t0.format(0), "view", "44600062", "2103807459595387724", "shiseido", "35.79", "541312140", "72d76fde"),
               "541312140", at(0), "view", "44600062", "2103807459595387724", "shiseido", 35.79, "72d76fde"),
        _event(rs(t0.format(5), "cart", "3900821", "2053013552326770905", "aqua", "33.20", "554748717", "9333dfbd"),
               "554748717", at(5), "cart", "3900821", "2053013552326770905", "aqua", 33.2, "9333dfbd"),
        _event(rs(t0.format(10), "purchase", "3900821", "2053013552326770905", "aqua", "33.20", "554748717", "9333dfbd"),
               "554748717", at(10), "buy", "3900821", "2053013552326770905", "aqua", 33.2, "9333dfbd"),
        _event(rs(t0.format(20), "remove_from_cart", "17200506", "2053013559792632471", None, "543.10", "519107250",
                  "566511c2"),
               "519107250", at(20), "remove_cart", "17200506", "2053013559792632471", None, 543.1, "566511c2"),
        _event(rs(t0.format(30), "view", "1", "2", "brand, with comma", "1.5", "6", "s6"),
               "6", at(30), "view", "1", "2", "brand, with comma", 1.5, "s6"),
    ]))
    assertDataFrameEqual(orders(spark, lax), _order_lines(spark, [
        (derived_order_id("554748717", dt.datetime(2019, 10, 1, 0, 0, 10, tzinfo=dt.timezone.utc)), 1, "554748717",
         at(10), "paid", "3900821", "2053013552326770905", 1, 33.2, 0.0, dt.date(2019, 10, 1)),
    ]))
    assert quarantine(spark, lax) == sorted([
        ("2019-Oct.csv", "2019-13-01 00:00:00 UTC,view,1,2,,b,1.0,5,s", "unparseable_time",
         "column 'event_time' value '2019-13-01 00:00:00 UTC' does not match the pattern 'yyyy-MM-dd HH:mm:ss z'"),
        ("2019-Oct.csv", "2019-10-01 00:00:00 UTC,view,1,2,,b,abc,5,s", "unparseable_number",
         "column 'price' value 'abc' is not a number"),
        ("2019-Oct.csv", "2019-10-01 00:00:00 UTC,view,1,2,,b,-1.0,5,s", "negative_price",
         "column 'price' value '-1.0' is negative"),
        ("2019-Oct.csv", "2019-10-01 00:00:00 UTC,view,,2,,b,1.0,5,s", "missing_required",
         "column 'product_id' is empty (required except for searches)"),
        ("2019-Oct.csv", "2019-10-01 00:00:00 UTC,wishlist,1,2,,b,1.0,5,s", "unknown_event_type",
         "column 'event_type' value 'wishlist' is not one of view, cart, remove_from_cart, purchase"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_duplicate, report.rows_quarantined) == (10, 5, 0, 5)
    assert report.ignored_columns == [] and report.missing_optional_columns == []


REES46_HEADER = REES46.splitlines()[0] + "\n"
# Records over several lines (RFC 4180): a quoted field may hold line breaks, and a quote inside it is doubled.
# The line 'brand",1.5,6,s6' is no header line, though it starts with a column name: it goes on a quoted field.
REES46_SPANNING = REES46_HEADER + '''\
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,"furniture.living_room
sofa",shiseido,35.79,541312140,72d76fde
2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances.water_heater,"aqua ""pro""",33.20,554748717,9333dfbd
2019-10-01 00:00:10 UTC,view,1,2,,"Acme
brand",1.5,6,s6
2019-10-01 00:00:20 UTC,view,1,2,,b,1.0,"7
next",s7
2019-10-01 00:00:30 UTC,wishlist,1,2,,"b ""x""",1.0,8,s8
2019-10-01 00:00:40 UTC,view,1,2,,"never closed,1.0,9,s9
2019-10-01 00:00:50 UTC,view,1,2,,b,1.0,10,s10
'''
# One record per line: read line by line, and a doubled quote is one quote there too.
REES46_LINES = REES46_HEADER + '2019-10-01 00:01:00 UTC,view,1,2,,"say ""hi""",2.0,11,s11\n'


def test_rees46_records_over_several_lines_and_doubled_quotes(spark, lax, tmp_path):
    write(tmp_path / "in" / "2019-Oct.csv", REES46_SPANNING)
    write(tmp_path / "in" / "2019-Nov.csv", REES46_LINES)
    report = ingest.load(Lakehouse(spark, lax), Source("rees46", str(tmp_path / "in")), now=NOW)

    def rs(seconds, etype, product, cat, brand, price, user, session):
        t = (dt.datetime(2019, 10, 1) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S UTC")
        return event_id("rees46", user, session, t, etype, product, cat, brand, price)

    def at(seconds):
        return utc(dt.datetime(2019, 10, 1, tzinfo=dt.timezone.utc).timestamp() + seconds)

    assertDataFrameEqual(clickstream(spark, lax), _events(spark, [
        _event(rs(0, "view", "44600062", "2103807459595387724", "shiseido", "35.79", "541312140", "72d76fde"),
               "541312140", at(0), "view", "44600062", "2103807459595387724", "shiseido", 35.79, "72d76fde"),
        _event(rs(5, "cart", "3900821", "2053013552326770905", 'aqua "pro"', "33.20", "554748717", "9333dfbd"),
               "554748717", at(5), "cart", "3900821", "2053013552326770905", 'aqua "pro"', 33.2, "9333dfbd"),
        _event(rs(10, "view", "1", "2", "Acme\nbrand", "1.5", "6", "s6"),
               "6", at(10), "view", "1", "2", "Acme\nbrand", 1.5, "s6"),
        _event(rs(60, "view", "1", "2", 'say "hi"', "2.0", "11", "s11"),
               "11", at(60), "view", "1", "2", 'say "hi"', 2.0, "s11"),
    ]))
    assert quarantine(spark, lax) == sorted([
        ("2019-Oct.csv", '2019-10-01 00:00:20 UTC,view,1,2,,b,1.0,"7\nnext",s7', "invalid_id",
         "column 'user_id' holds an id that contains control characters (U+000A)"),
        ("2019-Oct.csv", '2019-10-01 00:00:30 UTC,wishlist,1,2,,"b ""x""",1.0,8,s8', "unknown_event_type",
         "column 'event_type' value 'wishlist' is not one of view, cart, remove_from_cart, purchase"),
        ("2019-Oct.csv", '2019-10-01 00:00:40 UTC,view,1,2,,"never closed,1.0,9,s9\n'
                         '2019-10-01 00:00:50 UTC,view,1,2,,b,1.0,10,s10', "malformed_row",
         "expected 9 fields separated by ','; the record runs over 2 lines (quoted line breaks, or a quote never "
         "closed)"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined, report.files) == (7, 4, 3, 2)


GENERIC_JSON = """\
{"uid": "u1", "device": "d1", "ts": 1764000000000, "action": "click", "sku": "s1", "amount": "9.5"}
{"uid": null, "device": "d1", "ts": 1764000001000, "action": "search", "q": "running shoes"}
{"uid": "u1", "device": "d1", "ts": 1764000002000, "action": "order", "sku": "s1", "amount": 9.5, "qty": 2, "oid": "A1"}
{"uid": "u2", "device": "d2", "ts": 1764000003000, "action": "click", "sku": "s2", "extra": "ignored"}
{"uid": "u1", "device": "d1", "ts": 1764000004000, "action": "order", "sku": "s1", "amount": 9.5, "qty": 0, "oid": "A2"}
this is not json
{"device": "d3", "ts": 1764000005000, "action": "order", "sku": "s1", "oid": "A3"}
{"uid": "u2", "ts": 1764000006000, "action": "click"}
{"uid": "u2", "ts": "soon", "action": "click", "sku": "s2"}
"""

GENERIC_MAPPING = {
    "MAPPING__EVENT_ID": "", "MAPPING__SESSION_ID": "", "MAPPING__BRAND": "", "MAPPING__CATEGORY_ID": "",
    "MAPPING__CHANNEL": "", "MAPPING__PLATFORM": "",
    "MAPPING__USER_ID": "uid", "MAPPING__ANONYMOUS_ID": "device", "MAPPING__EVENT_TIME": "ts",
    "MAPPING__EVENT_TYPE": "action", "MAPPING__ITEM_ID": "sku", "MAPPING__PRICE": "amount",
    "MAPPING__SEARCH_QUERY": "q", "MAPPING__QUANTITY": "qty", "MAPPING__ORDER_ID": "oid",
    "EVENT_TYPES__CLICK": "view", "EVENT_TYPES__ORDER": "buy", "TIME_FORMAT": "millis",
}


def generic_config(tmp_path, file_format, identity=False, **extra):
    settings = {f"INGEST__GENERIC__{k}": v for k, v in {**GENERIC_MAPPING, "FILE_FORMAT": file_format, **extra}.items()}
    return make_config(tmp_path, INGEST__MAX_QUARANTINE_SHARE="1.0", IDENTITY__ENABLED=str(identity).lower(),
                       **settings)


def test_generic_json_lines_with_column_and_value_mapping(spark, tmp_path):
    cfg = generic_config(tmp_path, "json")
    report = ingest.load(Lakehouse(spark, cfg), Source("generic", str(write(tmp_path / "events.jsonl", GENERIC_JSON))), now=NOW)

    def gen(uid, device, ts, action, sku, amount, q, oid, qty):
        return event_id("generic", uid, device, ts, action, sku, amount, q, oid, qty)

    ms = 1764000000  # 2025-11-24 16:00:00 UTC = 2025-11-25 00:00 in Asia/Shanghai: dt 2025-11-25
    assertDataFrameEqual(clickstream(spark, cfg), _events(spark, [
        _event(gen("u1", "d1", "1764000000000", "click", "s1", "9.5", None, None, None), "u1", utc(ms), "view", "s1",
               price=9.5, anon="d1"),
        _event(gen(None, "d1", "1764000001000", "search", None, None, "running shoes", None, None), None, utc(ms + 1),
               "search", None, anon="d1", query="running shoes"),
        _event(gen("u1", "d1", "1764000002000", "order", "s1", "9.5", None, "A1", "2"), "u1", utc(ms + 2), "buy", "s1",
               price=9.5, anon="d1"),
        _event(gen("u2", "d2", "1764000003000", "click", "s2", None, None, None, None), "u2", utc(ms + 3), "view", "s2",
               anon="d2"),
    ]))
    assert clickstream(spark, cfg).select("dt").distinct().first()[0] == dt.date(2025, 11, 25)
    assertDataFrameEqual(orders(spark, cfg), _order_lines(spark, [
        ("A1", 1, "u1", utc(ms + 2), "paid", "s1", None, 2, 9.5, 0.0, dt.date(2025, 11, 25)),
    ]))
    assert quarantine(spark, cfg) == sorted([
        ("events.jsonl", GENERIC_JSON.splitlines()[4], "quantity_not_positive", "column 'qty' value '0' is below 1"),
        ("events.jsonl", "this is not json", "malformed_row", "not a JSON object"),
        ("events.jsonl", GENERIC_JSON.splitlines()[6], "missing_required", "column 'uid' is empty on a purchase"),
        ("events.jsonl", GENERIC_JSON.splitlines()[7], "missing_required",
         "column 'sku' is empty (required except for searches)"),
        ("events.jsonl", GENERIC_JSON.splitlines()[8], "unparseable_number",
         "column 'ts' value 'soon' is not a whole number of millis"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_duplicate, report.rows_quarantined) == (9, 4, 0, 5)


def test_generic_csv_with_a_time_pattern(spark, tmp_path):
    cfg = generic_config(tmp_path, "csv", TIME_FORMAT="yyyy-MM-dd HH:mm:ss")
    # the first column is not mapped: the header is still recognised, and the column reported as ignored
    text = "id,uid,device,ts,action,sku,amount\n1,u1,d1,2026-11-01 10:00:00,click,s1,1.0\n2,u1,d1,2026-11-01 25:00:00,click,s1,1.0\n"
    report = ingest.load(Lakehouse(spark, cfg), Source("generic", str(write(tmp_path / "e.csv", text))), now=NOW)
    rows = clickstream(spark, cfg).select("user_id", "event_time", "dt").collect()
    # a pattern without zone is read as local time in the configured zone
    ten_am_shanghai = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp()
    assert [tuple(r) for r in rows] == [("u1", utc(ten_am_shanghai), dt.date(2026, 11, 1))]
    assert quarantine(spark, cfg) == [("e.csv", "2,u1,d1,2026-11-01 25:00:00,click,s1,1.0", "unparseable_time",
                                       "column 'ts' value '2026-11-01 25:00:00' does not match the pattern "
                                       "'yyyy-MM-dd HH:mm:ss'")]
    assert sorted(report.missing_optional_columns) == ["oid", "q", "qty"] and report.ignored_columns == ["id"]


def test_ids_that_forget_could_not_name_are_quarantined(spark, tmp_path):
    cfg = generic_config(tmp_path, "csv", TIME_FORMAT="yyyy-MM-dd HH:mm:ss")
    longest, too_long = "x" * MAX_ID_LENGTH, "u" * (MAX_ID_LENGTH + 44)
    rows = [
        'u1,d1,2026-11-01 10:00:00,search,,,"say ""hi"" to ""shoes""",,',  # doubled quotes on one line
        f"{longest},d1,2026-11-01 10:01:00,click,s1,1.0,,,",  # the longest id forget accepts
        f"{too_long},d1,2026-11-01 10:02:00,click,s1,1.0,,,",
        "u\x014,d4,2026-11-01 10:03:00,click,s1,1.0,,,",
        "u5,d\t5,2026-11-01 10:04:00,click,s1,1.0,,,",
        f"u6,d6,2026-11-01 10:05:00,click,{'s' * 257},1.0,,,",
        f"u7,d7,2026-11-01 10:06:00,order,s1,1.0,,1,{'o' * 300}",
    ]
    path = write(tmp_path / "ids.csv", "uid,device,ts,action,sku,amount,q,qty,oid\n" + "\n".join(rows) + "\n")
    report = ingest.load(Lakehouse(spark, cfg), Source("generic", str(path)), now=NOW)
    loaded = clickstream(spark, cfg).select("user_id", "anonymous_id", "event_type", "search_query").collect()
    assert sorted(tuple(r) for r in loaded) == [("u1", "d1", "search", 'say "hi" to "shoes"'),
                                                (longest, "d1", "view", None)]
    assert quarantine(spark, cfg) == sorted([
        ("ids.csv", rows[2], "invalid_id", "column 'uid' holds an id that is 300 characters long, more than 256"),
        ("ids.csv", rows[3], "invalid_id", "column 'uid' holds an id that contains control characters (U+0001)"),
        ("ids.csv", rows[4], "invalid_id", "column 'device' holds an id that contains control characters (U+0009)"),
        ("ids.csv", rows[5], "invalid_id", "column 'sku' holds an id that is 257 characters long, more than 256"),
        ("ids.csv", rows[6], "invalid_id", "column 'oid' holds an id that is 300 characters long, more than 256"),
    ])
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (7, 2, 5)
    assert report.quarantined_by_rule == {"invalid_id": 5} and orders(spark, cfg).count() == 0


def test_ingest_and_forget_apply_one_id_rule(spark):
    values = ["u1", "x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1), "u\x00", "u\n1", "\x7f", "é" * 300, "u1\u00a0"]
    in_spark = spark.createDataFrame([(v,) for v in values], "id string").select(
        id_problem_column(F.col("id")).alias("problem")).collect()
    assert [r["problem"] for r in in_spark] == [id_problem(v) for v in values] == [
        None, None, "is 257 characters long, more than 256", "contains control characters (U+0000)",
        "contains control characters (U+000A)", "contains control characters (U+007F)",
        "is 300 characters long, more than 256", None]
    # forget trims what ingest trims (spaces only), so an id stored with other white space can still be named
    assert erasure.normalise_ids([" u1 ", "u1\u00a0"]) == ["u1", "u1\u00a0"]
    with pytest.raises(erasure.ErasureInputError, match=r"the id contains control characters \(U\+0009\)"):
        erasure.normalise_ids(["u1\t"])


def test_generic_parquet_with_typed_columns(spark, tmp_path):
    cfg = generic_config(tmp_path, "parquet")
    source = spark.createDataFrame(
        [("u1", "d1", dt.datetime(2026, 11, 1, 10, 0), "click", "s1", 2.5, 7),
         ("u1", "d1", dt.datetime(2026, 11, 1, 10, 5), "order", "s1", -2.5, 1)],
        "uid string, device string, ts timestamp, action string, sku string, amount double, other int")
    source.write.parquet(str(tmp_path / "pq"))
    report = ingest.load(Lakehouse(spark, cfg), Source("generic", str(tmp_path / "pq")), now=NOW)
    rows = clickstream(spark, cfg).select("user_id", "anonymous_id", "event_time", "event_type", "price").collect()
    assert [tuple(r) for r in rows] == [("u1", "d1", dt.datetime(2026, 11, 1, 10, 0), "view", 2.5)]
    assert [(q[2], q[3]) for q in quarantine(spark, cfg)] == [("negative_price", "column 'amount' value '-2.5' is negative")]
    assert quarantine(spark, cfg)[0][1].startswith('{"uid":"u1","device":"d1","ts":')
    assert report.ignored_columns == ["other"]


def test_a_bad_generic_mapping_is_a_config_error_naming_the_key(tmp_path):
    from portrait.config import ConfigError

    with pytest.raises(ConfigError, match=r"ingest.generic.mapping'.*unknown target field\(s\) \['colour'\]"):
        make_config(tmp_path, INGEST__GENERIC__MAPPING__COLOUR="c")
    with pytest.raises(ConfigError, match=r"ingest.generic.event_types'.*\['tap'\] are not clickstream types"):
        make_config(tmp_path, INGEST__GENERIC__EVENT_TYPES__CLICK="tap")
    with pytest.raises(ConfigError, match=r"ingest.generic.mapping'.*map at least event_time"):
        make_config(tmp_path, INGEST__GENERIC__MAPPING__EVENT_TIME="")
    with pytest.raises(ConfigError, match=r"ingest.generic.bogus'.*unknown key"):
        make_config(tmp_path, INGEST__GENERIC__BOGUS="x")
