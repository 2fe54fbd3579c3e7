"""portrait: e-commerce user portraits (用户画像) on Apache Spark, Delta Lake and MLflow."""

__version__ = "0.1.0"
