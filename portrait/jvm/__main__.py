"""``python -m portrait.jvm [--force]``: the set-up step that compiles portrait's JVM classes (portrait/jvm)."""

from __future__ import annotations

import argparse
import sys

from portrait.jvm import build
from portrait.spark import SparkSetupError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portrait.jvm",
                                     description="compile serve-bi's guard and authentication classes (once)")
    parser.add_argument("--force", action="store_true", help="compile again even if the jar is there")
    args = parser.parse_args(argv)
    try:
        path = build(force=args.force)
    except SparkSetupError as exc:
        # Only serve-bi needs these classes: the jobs run without them, so the set-up step goes on.
        print(f"warning: {exc}\n`portrait serve-bi` will refuse to start until they are built.", file=sys.stderr)
        return 0
    print(f"serve-bi classes: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
