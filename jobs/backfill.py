"""Entry point of the 'backfill' job for spark-submit and Databricks.

Usage: `spark-submit jobs/backfill.py --conf conf/local.yml …` (see `portrait backfill --help`)
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill", *sys.argv[1:]]))
