"""Entry point of the 'forget' (erasure) job for spark-submit and Databricks.

Usage: `spark-submit jobs/forget.py --conf conf/local.yml --user ID [--user ID ...] | --file ids.txt`
"""

import sys

from portrait.cli import main

if __name__ == "__main__":
    sys.exit(main(["forget", *sys.argv[1:]]))
