"""Entry point of the 'monitor' job for spark-submit and Databricks.

Usage: `spark-submit jobs/monitor.py --conf conf/local.yml …` (see `portrait monitor --help`)
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["monitor", *sys.argv[1:]]))
