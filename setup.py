"""Packaging for portrait: e-commerce user portraits on Spark, Delta Lake and MLflow."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# One pinned, mutually compatible set.  delta-spark 4.4.0 is the newest release whose jar
# (io.delta:delta-spark_4.2_2.13) Maven Central serves and it accepts pyspark up to 4.2.0.
INSTALL_REQUIRES = [
    "mlflow>=3.10,<4",
    "pyarrow>=15",
    "pandas>=2.2,<3",  # pyspark 4.2 does not yet support pandas 3
    "numpy>=1.26",
    "pydantic>=2.6,<3",
    "PyYAML>=6.0",
    "jieba==0.42.1",
]

# Spark itself is an extra: a Databricks runtime brings its own pyspark and Delta, and pip-installing the
# open-source ones over them breaks the cluster. Local installs and CI use `pip install -e ".[spark,dev]"`.
SPARK_REQUIRES = ["pyspark==4.2.0", "delta-spark==4.4.0"]

EXTRAS_REQUIRE = {
    "spark": SPARK_REQUIRES,
    "dev": [
        "pytest>=8",
        "pytest-xdist>=3.5",  # `make test PYTEST_ARGS="-n 2"`: both cores, one SparkSession per worker
        "ruff>=0.6",
        "jsonschema>=4.20",
        "scikit-learn>=1.4",  # bench/model_vs_sklearn.py only
        "pyhive[hive_pure_sasl]>=0.7",  # a real HiveServer2 client for the serve-bi tests
        "deltalake>=0.25",  # delta-rs: proves the tables are readable without Spark
    ],
    # bench/scale.py: DuckDB is the single-node reference users compare with; psutil reads the JVM's memory.
    # bench/segmenter.py: rjieba, the Rust port of jieba, measured against the segmenter portrait uses.
    "bench": ["duckdb>=1.1", "psutil>=5.9", "scikit-learn>=1.4", "deltalake>=0.25", "rjieba>=0.2"],
}

setup(
    name="portrait",
    version="0.1.0",
    description="E-commerce user portraits (用户画像) on Apache Spark, Delta Lake and MLflow",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["portrait", "portrait.*"]),
    package_data={"portrait": ["py.typed"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["portrait=portrait.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Information Analysis",
    ],
)
