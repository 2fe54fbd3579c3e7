# Two commands for a fresh machine (see README):  make run   and   make test
# Both run the set-up step first: a virtualenv in .venv with portrait installed, and the Delta Lake jars
# fetched once from Maven Central into ~/.cache/portrait (later Spark starts, tests included, are offline),
# beside a class-data archive of the classes a Spark session loads (recorded once; later driver JVMs map it)
# and serve-bi's guard and login classes, compiled from portrait/jvm/src with the JDK's javac.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATE   ?=
PYTEST_ARGS ?=
STAMP  := $(VENV)/.installed

.PHONY: setup run serve-bi test test-all lint bench clean-state check-java

setup: $(STAMP)
	@$(BIN)/python -m portrait.spark fetch-jars
	@$(BIN)/python -m portrait.spark class-archive
	@$(BIN)/python -m portrait.jvm

check-java:
	@command -v java >/dev/null 2>&1 || { echo "error: Java not found. portrait runs Apache Spark, which needs Java 17 or newer: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME." >&2; exit 1; }
	@java -version 2>&1 | awk -F'"' '/version/ { split($$2, v, "."); if (v[1] < 17) { print "error: Java " $$2 " found; portrait needs Java 17 or newer" > "/dev/stderr"; exit 1 } }'

$(STAMP): setup.py | check-java
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# --no-compile: byte-compiling every package pip installs takes longer than compiling what imports use
	$(BIN)/pip install --quiet --no-compile -e ".[spark,dev]"
	@touch $@

# The main job end to end on the embedded default: local Spark, a Delta directory in .portrait/lakehouse,
# MLflow on SQLite in .portrait/mlflow.db, synthetic data generated when no input tables exist.
# BI tables carry an HMAC of the user id; its key only ever comes from the environment. Locally a random
# development key is made once in .portrait/pseudonym.key (git-ignored, removed by clean-state) unless
# PORTRAIT_PSEUDONYM_KEY is already set.
PSEUDONYM_KEY_FILE := .portrait/pseudonym.key

$(PSEUDONYM_KEY_FILE):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@
	@echo "made a local development pseudonymisation key in $@ (not for production)"

run: setup $(PSEUDONYM_KEY_FILE)
	PORTRAIT_PSEUDONYM_KEY="$${PORTRAIT_PSEUDONYM_KEY:-$$(cat $(PSEUDONYM_KEY_FILE))}" \
	    $(BIN)/portrait daily --conf conf/local.yml $(if $(DATE),--date $(DATE))

# The lakehouse's BI tables over JDBC (jdbc:hive2://localhost:10000/portrait) until Ctrl-C, read-only. Clients
# log in as PORTRAIT_BI_USER with PORTRAIT_BI_PASSWORD (or PORTRAIT_BI_PASSWORD_SHA256), which must be set; on a
# machine of your own, SERVE_BI_ARGS=--no-auth-local-only serves without a login on 127.0.0.1 (docs/BI.md).
SERVE_BI_ARGS ?=
serve-bi: setup
	$(BIN)/portrait serve-bi --conf conf/local.yml $(SERVE_BI_ARGS)

# CI's command: the quick tests and the mission tier (pytest.ini). The other slow tests (the bundle's tasks as
# processes, a standalone cluster, an MLflow server, erasure races, faults injected into whole jobs, every ingest
# format end to end) run with `make test-all`.
TEST_TIER ?= -m "not slow or mission"
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(TEST_TIER) $(PYTEST_ARGS)

test-all: setup
	$(MAKE) test TEST_TIER=

lint: setup
	$(BIN)/ruff check .

# Spark beside DuckDB and pandas at 1M/10M/30M events (docs/BENCHMARKS.md); e.g. BENCH_ARGS="--events 100M
# --engines spark --spark-parts features" for other sizes. Needs the machine to itself: on 2 cores one repeat of
# the three sizes takes well over an hour (2026-11-28), three repeats several hours.
BENCH_ARGS ?= --events 1M,10M,30M --repeats 3
bench: setup
	$(BIN)/pip install --quiet -e ".[spark,dev,bench]"
	$(BIN)/python bench/scale.py $(BENCH_ARGS) --workdir /tmp/portrait-scale --json docs/bench/scale.json --markdown docs/bench/scale.md

# Remove the local lakehouse and MLflow store (not the virtualenv or the jar cache).
clean-state:
	rm -rf .portrait
