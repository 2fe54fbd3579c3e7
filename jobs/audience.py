"""Entry point of the 'audience' job for spark-submit and Databricks.

Usage: `spark-submit jobs/audience.py --conf conf/local.yml --date 2026-11-27 --tag high_propensity
--output audience.csv`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["audience", *sys.argv[1:]]))
