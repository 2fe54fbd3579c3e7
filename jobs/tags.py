"""Entry point of the 'tags' job for spark-submit and Databricks.

Usage: `spark-submit jobs/tags.py --conf conf/local.yml --date 2026-11-27`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["tags", *sys.argv[1:]]))
