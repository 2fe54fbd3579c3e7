"""Entry point of the 'score' job for spark-submit and Databricks.

Usage: `spark-submit jobs/score.py --conf conf/local.yml --date 2026-11-27`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
