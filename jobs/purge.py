"""Entry point of the 'purge' job (finish erasures whose retention has passed) for spark-submit and Databricks.

Usage: `spark-submit jobs/purge.py --conf conf/local.yml`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["purge", *sys.argv[1:]]))
