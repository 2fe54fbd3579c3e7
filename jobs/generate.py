"""Entry point of the 'generate' job for spark-submit and Databricks.

Usage: `spark-submit jobs/generate.py --conf conf/local.yml --date 2026-11-27`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
