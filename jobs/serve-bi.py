"""Entry point of the 'serve-bi' job for spark-submit and Databricks.

Usage: `spark-submit jobs/serve-bi.py --conf conf/local.yml`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve-bi", *sys.argv[1:]]))
