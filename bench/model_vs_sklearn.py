"""Model benchmark: the Spark ML pipeline against scikit-learn on the same training set — AUC and fit time.

Usage: `.venv/bin/python bench/model_vs_sklearn.py [--users 4000] [--days 60] [--workdir /tmp/portrait-bench-model]`

Generates a shop, builds the training and test sets exactly as `portrait train` does
(:func:`portrait.pipeline.training_sets`), then fits

- Spark: the project's Pipeline (log1p numerics; RegexTokenizer → HashingTF(binary) → IDF → ChiSqSelector → LR),
- scikit-learn: HashingVectorizer(binary) → TfidfTransformer → SelectKBest(chi2) on the text, the same log1p
  numerics, MaxAbsScaler, LogisticRegression(liblinear) with C matched to Spark's regParam (C = 1 / (λ n)),

with the same hashing width, number of selected terms and regularisation, and prints one JSON line per engine.
Not a test: timings depend on the machine and on whoever else is using it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
from pathlib import Path

import numpy as np

RUN_DATE = dt.date(2026, 11, 20)


def sklearn_fit_and_score(train, test, settings) -> dict[str, float]:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.feature_selection import SelectKBest, chi2
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MaxAbsScaler

    from portrait.features.behaviour import LOOKBACK_DAYS
    from portrait.model.pipeline import COUNT_FEATURES

    def numeric(frame) -> np.ndarray:
        counts = np.log1p(frame[list(COUNT_FEATURES)].astype("float64").fillna(0.0).to_numpy())
        recency = frame["days_since_last_order"].astype("float64")
        return np.column_stack([counts, np.log1p(recency.fillna(LOOKBACK_DAYS).to_numpy()),
                                recency.notna().astype("float64").to_numpy()])

    started = time.monotonic()
    hashing = HashingVectorizer(n_features=settings.hashing_features, binary=True, norm=None,
                                alternate_sign=False, tokenizer=str.split, token_pattern=None, lowercase=False)
    tfidf = TfidfTransformer(norm=None)
    selector = SelectKBest(chi2, k=min(settings.selected_text_features, settings.hashing_features))
    scaler = MaxAbsScaler()
    y = train["label"].to_numpy()
    text = selector.fit_transform(tfidf.fit_transform(hashing.transform(train["text_document"].fillna(""))), y)
    x = scaler.fit_transform(sp.hstack([sp.csr_matrix(numeric(train)), text]).tocsr())
    c = 1.0 / (settings.reg_param * len(y)) if settings.reg_param > 0 else 1e6
    model = LogisticRegression(C=c, solver="liblinear", max_iter=settings.max_iter).fit(x, y)
    fit_seconds = time.monotonic() - started
    test_text = selector.transform(tfidf.transform(hashing.transform(test["text_document"].fillna(""))))
    x_test = scaler.transform(sp.hstack([sp.csr_matrix(numeric(test)), test_text]).tocsr())
    auc = roc_auc_score(test["label"].to_numpy(), model.predict_proba(x_test)[:, 1])
    return {"fit_seconds": fit_seconds, "auc_roc": float(auc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--workdir", default="/tmp/portrait-bench-model")
    args = parser.parse_args()

    from portrait.config import load_config
    from portrait.model.evaluation import binary_metrics, evaluate_model
    from portrait.model.pipeline import build_pipeline
    from portrait.model.scoring import score
    from portrait.pipeline import run_generate, training_sets
    from portrait.spark import get_spark

    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    environ = {
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "local.yml", environ=environ)
    spark = get_spark(cfg)
    run_generate(spark, cfg, RUN_DATE, users=args.users, days=args.days)
    _, train, test = training_sets(spark, cfg, RUN_DATE)
    train, test = train.cache(), test.cache()
    rows = {"train_rows": train.count(), "test_rows": test.count()}

    started = time.monotonic()
    model = build_pipeline(cfg.model).fit(train)
    spark_fit = time.monotonic() - started
    scored = test.transform(score(model))
    report = evaluate_model(scored, seed=cfg.model.seed)
    print(json.dumps({"engine": "spark", **rows, "fit_seconds": round(spark_fit, 2),
                      "auc_roc": round(binary_metrics(scored)["auc_roc"], 4),
                      "baseline_rfm_auc_roc": round(report.metrics["baseline_rfm_auc_roc"], 4),
                      "baseline_random_auc_roc": round(report.metrics["baseline_random_auc_roc"], 4)}))

    sklearn = sklearn_fit_and_score(train.toPandas(), test.toPandas(), cfg.model)  # a few thousand rows
    print(json.dumps({"engine": "scikit-learn", **rows, "fit_seconds": round(sklearn["fit_seconds"], 2),
                      "auc_roc": round(sklearn["auc_roc"], 4)}))
    spark.stop()


if __name__ == "__main__":
    main()
