"""The purge task: finish erasures once their retention has passed (``portrait purge``, scheduled daily).

``portrait forget`` removes persons from the current version of every table (``erasure_requests.state =
removed``); the files that older versions still reference keep them until those files are older than
``privacy.vacuum_retention_hours``. For every request that finished at least that long ago, this stage runs
:func:`portrait.erasure_io.purge_table` on every personal table (deletion vectors rewritten, VACUUM, log
retention set to the same), then records ``state = purged`` with the time. Requests not old enough yet wait
for a later run; a run with nothing due touches no table.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import functions as F

from portrait.lakehouse import Lakehouse
from portrait.schemas import ERASURE_REQUESTS
from portrait.stages.base import timed
from portrait.stages.forget import PURGED, REMOVED, erasable_tables

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    retention_hours: int
    purged: int = 0     # requests purged by this run
    waiting: int = 0    # requests removed but not older than the retention yet
    tables: list[str] = field(default_factory=list)

    def render(self) -> str:
        if not self.purged:
            return (f"purge: nothing due; {self.waiting} erasure request(s) wait until their rows have been removed "
                    f"for {self.retention_hours} h")
        return (f"purge: {self.purged} erasure request(s) purged (retention {self.retention_hours} h) in "
                f"{len(self.tables)} table(s): {', '.join(self.tables)}; {self.waiting} still waiting")


def run(lake: Lakehouse, now: dt.datetime | None = None) -> PurgeReport:
    """Purge the files of every erasure request older than the retention; returns what was done."""
    now = now or dt.datetime.now(dt.timezone.utc)
    retention = lake.cfg.privacy.vacuum_retention_hours
    report = PurgeReport(retention)
    if not lake.exists(ERASURE_REQUESTS):
        return report
    lake.add_missing_columns(ERASURE_REQUESTS)
    cutoff = now - dt.timedelta(hours=retention)
    pending = lake.read(ERASURE_REQUESTS).where(F.coalesce(F.col("state"), F.lit(REMOVED)) != PURGED)
    is_due = F.col("finished_at") <= F.lit(cutoff)
    counts = pending.agg(F.count(F.lit(1)).alias("pending"), F.count_if(is_due).alias("due")).first()
    report.waiting = counts["pending"] - counts["due"]
    if not counts["due"]:
        log.info(report.render())
        return report
    for contract in erasable_tables(lake):
        with timed(f"purge: {contract.name}"):
            if lake.purge(contract, retention):
                report.tables.append(contract.name)
    # Only now: a crash before this line leaves the requests due, and the next run purges them again.
    purged = pending.where(is_due).withColumn("state", F.lit(PURGED)).withColumn("purged_at", F.lit(now))
    lake.upsert(ERASURE_REQUESTS, purged)
    report.purged = counts["due"]
    log.info(report.render())
    return report
