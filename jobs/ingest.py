"""Entry point of the 'ingest' job for spark-submit and Databricks.

Usage: `spark-submit jobs/ingest.py --conf conf/local.yml --format taobao --path UserBehavior.csv`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
