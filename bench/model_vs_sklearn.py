"""Model benchmark: the Spark ML pipeline against scikit-learn on the same training set — AUC and fit time.

Usage: `.venv/bin/python bench/model_vs_sklearn.py [--users 20000] [--days 60] [--workdir DIR] [--reuse]
[--spark-builtin-selector]`

Generates a shop (``portrait.generate``), builds the training and test sets exactly as `portrait train` does
(:func:`portrait.stages.train.training_sets`: snapshots D-21 and D-14 train, D-7 tests), then fits

- Spark: the project's Pipeline (:func:`portrait.model.pipeline.build_pipeline`, configuration as in
  ``conf/local.yml``);
- scikit-learn, ``matched``: the same model written with scikit-learn — the same numeric transform, the same
  one-hot levels, ``HashingVectorizer(binary)`` → TF-IDF with Spark's IDF (``log((n + 1) / (df + 1))``, 0
  below ``idf_min_doc_freq`` documents) → ``SelectKBest`` with Pearson's 2×2 chi-square of presence (what
  Spark's ``ChiSquareTest`` computes on binary slots) → division by the standard deviation (what
  ``standardization=True`` does to the penalty) → ``LogisticRegression(lbfgs, C = 1 / (regParam · n))``,
  unpenalised intercept, same ``max_iter``;
- scikit-learn, ``defaults``: the textbook pipeline — ``TfidfTransformer()`` (smoothed IDF + 1),
  ``SelectKBest(chi2)`` on the TF-IDF values, ``MaxAbsScaler``, ``LogisticRegression(liblinear)`` with the same C.

Every AUC is computed the same way, with ``sklearn.metrics.roc_auc_score`` on the test rows' scores (Spark's
``BinaryClassificationEvaluator`` bins the curve into 1000 points; its value is printed too). One JSON line per
engine. ``--spark-builtin-selector`` also fits the pipeline with Spark's ``ChiSqSelector`` in place of
``ChiSquareTopK``, to measure the p-value tie problem described in ``portrait/model/pipeline.py``.
Not a test: timings depend on the machine and on whoever else is using it. Results: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

RUN_DATE = dt.date(2026, 11, 20)


def _numeric(frame) -> np.ndarray:
    from portrait.features.dates import LOOKBACK_DAYS
    from portrait.model.pipeline import COUNT_FEATURES

    counts = np.log1p(frame[list(COUNT_FEATURES)].astype("float64").fillna(0.0).to_numpy())
    recency = frame["days_since_last_order"].astype("float64")
    return np.column_stack([counts, np.log1p(recency.fillna(LOOKBACK_DAYS).to_numpy()),
                            recency.notna().astype("float64").to_numpy()])


def _levels(frame):
    from portrait.model.pipeline import CATEGORICAL_FEATURES, MISSING_LEVEL

    return frame[list(CATEGORICAL_FEATURES)].astype("object").where(
        frame[list(CATEGORICAL_FEATURES)].notna(), MISSING_LEVEL).astype(str)


def presence_chi2(x, y):
    """Pearson's chi-square of independence of each column's presence (x != 0) and the label, 2×2 table.

    ``sklearn.feature_selection.chi2`` sums feature *values* per class against their expectation: for a
    binary column that is only the "present" row of the table (the statistic times ``absent / n``), and on
    TF-IDF values it is further multiplied by the term's IDF. Spark's ``ChiSquareTest`` uses the whole table.
    """
    from scipy.stats import chi2 as chi2_distribution
    from sklearn.feature_selection import chi2

    present = (x != 0).astype(np.float64)
    n = present.shape[0]
    documents = np.asarray(present.sum(axis=0)).ravel()
    partial, _ = chi2(present, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where((documents > 0) & (documents < n), partial * n / (n - documents), 0.0)
    return statistic, chi2_distribution.sf(statistic, 1)


# scikit-learn variants: "matched" is the Spark model; each ablation changes one ingredient back to the textbook
# default, so the table in docs/BENCHMARKS.md shows what each difference is worth.
MATCHED = {"idf": "spark", "selector": "presence_chi2", "scaling": "std", "solver": "lbfgs"}
VARIANTS: dict[str, dict[str, str]] = {
    "matched": MATCHED,
    "matched-sklearn-idf": {**MATCHED, "idf": "sklearn"},
    "matched-sklearn-chi2": {**MATCHED, "selector": "sklearn_chi2"},
    "matched-maxabs-scaling": {**MATCHED, "scaling": "maxabs"},
    "defaults": {"idf": "sklearn", "selector": "sklearn_chi2", "scaling": "maxabs", "solver": "liblinear"},
}


def sklearn_fit_and_score(train, test, settings, variant: str, max_iter: int | None = None) -> dict[str, float]:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.feature_selection import SelectKBest, chi2
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder, StandardScaler

    recipe = VARIANTS[variant]
    started = time.monotonic()
    y = train["label"].to_numpy()
    hashing = HashingVectorizer(n_features=settings.hashing_features, binary=True, norm=None,
                                alternate_sign=False, tokenizer=str.split, token_pattern=None, lowercase=False)
    onehot = OneHotEncoder(handle_unknown="ignore")
    k = min(settings.selected_text_features, settings.hashing_features)
    c = 1.0 / (settings.reg_param * len(y)) if settings.reg_param > 0 else 1e6
    terms = hashing.transform(train["text_document"].fillna(""))
    if recipe["idf"] == "spark":
        documents = np.asarray((terms != 0).sum(axis=0)).ravel()
        idf = np.log((len(y) + 1.0) / (documents + 1.0))
        idf[documents < settings.idf_min_doc_freq] = 0.0

        def tfidf(matrix):
            return matrix @ sp.diags(idf)
    else:
        tfidf = TfidfTransformer(norm=None).fit(terms).transform
    selector = SelectKBest(presence_chi2 if recipe["selector"] == "presence_chi2" else chi2, k=k)
    scaler = StandardScaler(with_mean=False) if recipe["scaling"] == "std" else MaxAbsScaler()
    iterations = max_iter or settings.max_iter
    if recipe["solver"] == "lbfgs":
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=iterations, tol=1e-6)
    else:
        model = LogisticRegression(C=c, solver="liblinear", max_iter=iterations)
    block = sp.hstack([tfidf(terms), onehot.fit_transform(_levels(train))]).tocsr()
    selected = selector.fit_transform(block, y)
    x = scaler.fit_transform(sp.hstack([sp.csr_matrix(_numeric(train)), selected]).tocsr())
    model.fit(x, y)
    fit_seconds = time.monotonic() - started
    test_block = sp.hstack([tfidf(hashing.transform(test["text_document"].fillna(""))),
                            onehot.transform(_levels(test))]).tocsr()
    x_test = scaler.transform(sp.hstack([sp.csr_matrix(_numeric(test)), selector.transform(test_block)]).tocsr())
    auc = roc_auc_score(test["label"].to_numpy(), model.predict_proba(x_test)[:, 1])
    return {"fit_seconds": round(fit_seconds, 2), "auc_roc": round(float(auc), 4),
            "iterations": int(np.max(model.n_iter_)), "max_iter": iterations}


def write_inputs(lakehouse: Path, users: int, days: int, seed: int, time_zone: str) -> dict[str, int]:
    """The generated shop's input tables, written with delta-rs (the ``bench`` extra) when it is installed.

    ``portrait generate`` hands Arrow tables to ``spark.createDataFrame``, which ships them through the driver:
    fine for the tests' shops, but 200k users' 11M events took longer than the model fits. delta-rs writes the
    same rows (same generator, same seed) as Parquet + Delta log directly; Spark reads them like its own.
    """
    from deltalake import write_deltalake

    from portrait.generate import generate_tables

    tables = generate_tables(users=users, days=days, end_date=RUN_DATE, seed=seed, time_zone=time_zone)
    for name, table in tables.items():
        write_deltalake(str(lakehouse / name), table, mode="overwrite",
                        partition_by=["dt"] if "dt" in table.column_names else None)
    return {name: table.num_rows for name, table in tables.items()}


def _spark_run(name: str, pipeline, train, test) -> tuple[dict, object]:
    from sklearn.metrics import roc_auc_score

    from portrait.model.evaluation import binary_metrics
    from portrait.model.scoring import SCORE, score

    started = time.monotonic()
    model = pipeline.fit(train)
    fit_seconds = time.monotonic() - started
    scored = test.transform(score(model)).select("label", SCORE).cache()
    local = scored.toPandas()  # test rows only: (label, score)
    binned = binary_metrics(scored)["auc_roc"]
    scored.unpersist()
    return {"engine": name, "fit_seconds": round(fit_seconds, 2),
            "auc_roc": round(float(roc_auc_score(local["label"], local[SCORE])), 4),
            "auc_roc_evaluator_1000_bins": round(binned, 4),
            "iterations": int(model.stages[-1].summary.totalIterations)}, model


def _sklearn_only(root: Path) -> None:
    import pandas as pd

    from portrait.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "local.yml")
    train, test = pd.read_parquet(root / "train.parquet"), pd.read_parquet(root / "test.parquet")
    for variant in VARIANTS:
        result = sklearn_fit_and_score(train, test, cfg.model, variant)
        print(json.dumps({"engine": f"scikit-learn-{variant}", **result}), flush=True)
    converged = sklearn_fit_and_score(train, test, cfg.model, "matched", max_iter=10 * cfg.model.max_iter)
    print(json.dumps({"engine": "scikit-learn-matched-converged", **converged}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--workdir", default="/tmp/portrait-bench-model")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the workdir's tables and feature partitions when they exist")
    parser.add_argument("--sklearn-only", action="store_true",
                        help="no Spark: run every scikit-learn variant on the workdir's exported train/test parquet")
    parser.add_argument("--spark-builtin-selector", action="store_true",
                        help="also fit with Spark's ChiSqSelector (ranks by p-value) instead of ChiSquareTopK")
    args = parser.parse_args()
    if args.sklearn_only:
        _sklearn_only(Path(args.workdir))
        return

    import pyspark
    import sklearn
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import ChiSqSelector

    from portrait.config import load_config
    from portrait.lakehouse import Lakehouse
    from portrait.model.evaluation import evaluate_model
    from portrait.model.pipeline import MODEL_INPUT_COLUMNS, ChiSquareTopK, build_pipeline
    from portrait.model.scoring import score
    from portrait.spark import get_spark
    from portrait.stages import ingest, train

    root = Path(args.workdir)
    reuse = args.reuse and (root / "lakehouse").exists()
    if not reuse:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
    environ = {
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "local.yml", environ=environ)
    spark = get_spark(cfg)
    started = time.monotonic()
    if not reuse:
        try:
            write_inputs(root / "lakehouse", args.users, args.days, cfg.generate.seed, cfg.time_zone)
        except ImportError:  # no delta-rs: the slower path every install has
            ingest.generate(Lakehouse(spark, cfg), RUN_DATE, users=args.users, days=args.days)
    _, train, test = train.training_sets(Lakehouse(spark, cfg), RUN_DATE)
    train, test = train.cache(), test.cache()
    rows = {"users": args.users, "days": args.days, "train_rows": train.count(), "test_rows": test.count(),
            "train_positive_rate": round(train.agg({"label": "avg"}).first()[0], 4),
            "data_seconds": round(time.monotonic() - started, 1)}
    print(json.dumps({"setup": rows, "versions": {"pyspark": pyspark.__version__, "scikit-learn": sklearn.__version__,
                                                   "python": platform.python_version()},
                      "model": {k: v for k, v in cfg.model.model_dump().items() if k != "tuning"}}), flush=True)

    pipeline = build_pipeline(cfg.model)
    result, model = _spark_run("spark", pipeline, train, test)
    report = evaluate_model(test.transform(score(model)), seed=cfg.model.seed)
    result["baseline_rfm_auc_roc"] = round(report.metrics["baseline_rfm_auc_roc"], 4)
    print(json.dumps(result), flush=True)
    # The model's input columns only (what scikit-learn fits on): Arrow cannot write the nested interest columns
    # once pandas has turned their structs into mixed objects. The benchmark's own data: fits in memory.
    needed = [*MODEL_INPUT_COLUMNS, "label"]
    train_pd, test_pd = train.select(*needed).toPandas(), test.select(*needed).toPandas()
    train_pd.to_parquet(root / "train.parquet")
    test_pd.to_parquet(root / "test.parquet")
    for variant in ("matched", "defaults"):  # Spark is idle meanwhile: the timings do not compete
        sklearn_result = sklearn_fit_and_score(train_pd, test_pd, cfg.model, variant)
        print(json.dumps({"engine": f"scikit-learn-{variant}", **sklearn_result}), flush=True)
    if args.spark_builtin_selector:
        stages = [ChiSqSelector(featuresCol=s.getFeaturesCol(), outputCol=s.getOutputCol(), labelCol=s.getLabelCol(),
                                numTopFeatures=s.getNumTopFeatures()) if isinstance(s, ChiSquareTopK) else s
                  for s in pipeline.getStages()]
        print(json.dumps(_spark_run("spark-ChiSqSelector", Pipeline(stages=stages), train, test)[0]), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
