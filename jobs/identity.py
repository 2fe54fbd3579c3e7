"""Entry point of the 'identity' job for spark-submit and Databricks.

Usage: `spark-submit jobs/identity.py --conf conf/local.yml`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["identity", *sys.argv[1:]]))
