"""Entry point of the 'maintain' job for spark-submit and Databricks.

Usage: `spark-submit jobs/maintain.py --conf conf/local.yml`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
