"""Entry point of the 'replay' job for spark-submit and Databricks.

Usage: `spark-submit jobs/replay.py --conf conf/local.yml …` (see `portrait replay --help`)
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["replay", *sys.argv[1:]]))
