"""portrait's BG/NBD and Gamma-Gamma fits against the established implementation, on the same summary.

    .venv/bin/python bench/value_reference.py [--buyers 5000] [--seed 7] [--json docs/bench/value-reference.json]

The buyers follow the planted process of tests/test_value.py (portrait/generate/buyers.py). Their summary
is fitted by portrait/model/value.py here and by ``lifetimes`` (BetaGeoFitter, GammaGammaFitter) in a
virtualenv of its own under ~/.cache/portrait/bench-lifetimes, created on the first run (lifetimes is not a
dependency of portrait: it is unmaintained and pins old libraries). Prints both parameter sets, the expected
purchases in the 90 days after calibration, the seconds each fit took and the largest relative difference;
tests/test_value.py holds the reference numbers of the default run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np

from portrait.generate.buyers import simulate_buyers
from portrait.model import value
from portrait.spark import cache_dir

PLANTED = {"r": 0.25, "alpha": 4.0, "a": 1.5, "b": 4.0, "p": 6.0, "q": 4.0, "gamma": 15.0}
LIFETIMES = "lifetimes==0.11.3"
_REFERENCE_SCRIPT = """
import json, sys, time
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
d = pd.read_csv(sys.argv[1])
started = time.perf_counter()
bg = BetaGeoFitter().fit(d.x, d.t_x, d["T"])
seconds = time.perf_counter() - started
repeat = d[d.x > 0]
gg = GammaGammaFitter().fit(repeat.x, repeat.m)
holdout = float(bg.conditional_expected_number_of_purchases_up_to_time(90, d.x, d.t_x, d["T"]).sum())
print(json.dumps({"bgnbd": bg.params_.to_dict(), "gamma_gamma": gg.params_.to_dict(),
                  "holdout_purchases": holdout, "bgnbd_seconds": seconds}))
"""


def _lifetimes_python() -> Path:
    home = cache_dir() / "bench-lifetimes"
    python = home / "bin" / "python"
    if not python.exists():
        venv.create(home, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", LIFETIMES], check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    buyers = simulate_buyers(args.buyers, **PLANTED, ages=(60, 400), holdout=90, seed=args.seed)
    started = time.perf_counter()
    purchases = value.fit_bgnbd(buyers.x, buyers.t_x, buyers.T)
    seconds = time.perf_counter() - started
    spend = value.fit_gamma_gamma(buyers.x, buyers.m)
    ours = {"bgnbd": {k: float(getattr(purchases, k)) for k in ("r", "alpha", "a", "b")},
            "gamma_gamma": {k: float(getattr(spend, k)) for k in ("p", "q", "v")},
            "holdout_purchases": float(value.expected_purchases(purchases, 90, buyers.x, buyers.t_x, buyers.T).sum()),
            "bgnbd_seconds": seconds}
    with tempfile.TemporaryDirectory() as folder:
        summary = Path(folder) / "summary.csv"
        rows = np.column_stack([buyers.x, buyers.t_x, buyers.T, buyers.m])
        np.savetxt(summary, rows, delimiter=",", header="x,t_x,T,m", comments="")
        done = subprocess.run([str(_lifetimes_python()), "-c", _REFERENCE_SCRIPT, str(summary)], check=True,
                              capture_output=True, text=True)
    reference = json.loads(done.stdout)
    differences = [abs(ours[m][k] / reference[m][k] - 1) for m in ("bgnbd", "gamma_gamma") for k in ours[m]]
    differences.append(abs(ours["holdout_purchases"] / reference["holdout_purchases"] - 1))
    result = {"buyers": args.buyers, "seed": args.seed, "planted": PLANTED, "portrait": ours,
              "reference": {"implementation": LIFETIMES, **reference},
              "actual_holdout_purchases": float(buyers.holdout_purchases.sum()),
              "largest_relative_difference": max(differences)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
