"""The Databricks Asset Bundle (databricks.yml + resources/*.yml) is valid and its jobs would start.

Validation uses the bundle JSON Schema published by the Databricks CLI, read from ``../shared/schemas``
beside the repository; where that file is absent only the schema test is skipped.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import functools
import importlib
import json
import re
from collections.abc import Iterator
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml

from portrait import graph
from portrait.cli import _build_parser
from portrait.config import load_config

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILE = REPO / "databricks.yml"
SCHEMA_FILE = REPO.parent / "shared" / "schemas" / "databricks-bundle.schema.json"
PACKAGE = "portrait"
RUN_DATE = "2026-11-27"

BUNDLE_REF = re.compile(r"\$\{([^}]+)\}")  # ${var.catalog}, resolved by `databricks bundle deploy`
DYNAMIC_REF = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")  # {{job.parameters.run_date}}, resolved at run time


# ----------------------------------------------------------------------------------------------- loading


def _merge(base: dict[str, Any], extra: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Deep-merge mappings as the bundle loader does; the same scalar or list defined twice is an error."""
    merged = dict(base)
    for key, value in extra.items():
        dotted = f"{path}{key}"
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, f"{dotted}.")
        elif key in merged:
            raise ValueError(f"{dotted} is defined in more than one bundle file")
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), f"{path.name}: the top level must be a mapping"
    return data


def load_bundle(root_file: Path = BUNDLE_FILE) -> dict[str, Any]:
    """databricks.yml with every file matched by its ``include`` globs merged into the root."""
    bundle = _read_yaml(root_file)
    for pattern in bundle.get("include", []):
        matches = sorted(root_file.parent.glob(pattern))
        assert matches, f"include pattern {pattern!r} matches no file"
        for path in matches:
            bundle = _merge(bundle, _read_yaml(path))
    return bundle


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return load_bundle()


# -------------------------------------------------------------------------------------------- validation

# The schema's patterns use the Unicode classes \p{L} (letter) and \p{N} (number), which Python's ``re``
# does not know. Their equivalents: [^\W_] is a letter or number, [^\W\d_] a letter (\d covers Nd only).
_UNICODE_CLASSES = (("[\\p{L}\\p{N}]", "[^\\W_]"), ("\\p{L}", "[^\\W\\d_]"), ("\\p{N}", "\\d"))


@functools.cache
def _python_pattern(pattern: str) -> re.Pattern[str]:
    for unicode_class, python_class in _UNICODE_CLASSES:
        pattern = pattern.replace(unicode_class, python_class)
    if "\\p{" in pattern or "\\P{" in pattern:
        raise ValueError(f"schema pattern uses a Unicode class this test cannot translate: {pattern}")
    return re.compile(pattern)


@functools.cache
def bundle_validator():
    """A validator for the bundle schema, built once: the file is ~900 KB."""
    from jsonschema import ValidationError, validators  # dev extra; imported here so loading stays cheap

    def pattern(validator, patrn, instance, schema):
        if validator.is_type(instance, "string") and not _python_pattern(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    base = validators.validator_for(schema, default=validators.Draft202012Validator)
    return validators.extend(base, {"pattern": pattern})(schema)


def _is_reference_alternative(schema: Any) -> bool:
    """The schema offers most fields as oneOf [the real type, a ``${…}`` reference string]."""
    return isinstance(schema, dict) and str(schema.get("pattern", "")).startswith("\\$\\{")


def _leaves(error) -> Iterator:
    """The innermost errors of a failed oneOf, without the 'nor is it a ${…} reference' alternatives."""
    if not error.context and not _is_reference_alternative(error.schema):
        yield error
    for sub in error.context:
        yield from _leaves(sub)


def schema_errors(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every innermost schema violation as (dotted path, message)."""
    return [
        (".".join(map(str, leaf.absolute_path)), leaf.message)
        for error in bundle_validator().iter_errors(document)
        for leaf in (list(_leaves(error)) or [error])
    ]


@pytest.fixture(scope="module")
def schema_available() -> None:
    if not SCHEMA_FILE.is_file():
        pytest.skip(f"bundle schema not found at {SCHEMA_FILE} (it lives in ../shared/schemas)")


def test_bundle_matches_databricks_schema(bundle, schema_available):
    assert schema_errors(bundle) == []


def _first_task(document: dict[str, Any]) -> dict[str, Any]:
    job = next(iter(document["resources"]["jobs"].values()))
    return job["tasks"][0]


@pytest.mark.parametrize(
    ("change", "path_end", "message"),
    [
        (lambda task: task.update(retries=3), "tasks.0", "'retries' was unexpected"),
        (lambda task: task.update(max_retries="many"), "tasks.0.max_retries", "is not of type 'integer'"),
        (lambda task: task["python_wheel_task"].pop("package_name"), "tasks.0.python_wheel_task",
         "'package_name' is a required property"),
    ],
    ids=["unknown-key", "wrong-type", "missing-required"],
)
def test_schema_check_rejects_a_broken_bundle(bundle, schema_available, change, path_end, message):
    broken = copy.deepcopy(bundle)
    change(_first_task(broken))
    errors = schema_errors(broken)
    assert errors, "a broken task passed schema validation: the check would not catch anything"
    assert any(path.endswith(path_end) and message in text for path, text in errors), errors


def test_schema_accepts_variable_references_in_typed_fields(bundle, schema_available):
    edited = copy.deepcopy(bundle)
    _first_task(edited)["max_retries"] = "${var.retries}"
    assert schema_errors(edited) == []


# ------------------------------------------------------------------------------------- wheel task checks


def wheel_tasks(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(job key.task key, job, python_wheel_task) for every wheel task of every job."""
    for job_key, job in document.get("resources", {}).get("jobs", {}).items():
        for task in job.get("tasks", []):
            if "python_wheel_task" in task:
                yield f"{job_key}.{task['task_key']}", job, task["python_wheel_task"]


def _console_scripts() -> dict[str, str]:
    """setup.py's ``entry_points["console_scripts"]`` as {name: "module:function"}, read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    scripts = ast.literal_eval(keyword.value).get("console_scripts", [])
                    return dict((part.strip() for part in s.split("=", 1)) for s in scripts)
    raise AssertionError("setup.py has no setup(entry_points=...) with console_scripts")


def _bundle_values(document: dict[str, Any], target: str) -> dict[str, str]:
    """Plausible values of the ${...} references for ``target``, as `bundle deploy` would fill them in."""
    values = {
        "bundle.name": document["bundle"]["name"],
        "bundle.target": target,
        "bundle.git.commit": "0123456789abcdef0123456789abcdef01234567",
        "workspace.current_user.userName": "someone@example.com",
        "workspace.file_path": str(REPO),  # the synced files are this repository
    }
    overrides = document["targets"][target].get("variables", {})
    for name, spec in document.get("variables", {}).items():
        value = overrides.get(name, spec.get("default"))
        if value is not None:
            values[f"var.{name}"] = str(value)
    return values


def _substitute(text: str, values: dict[str, str], pattern: re.Pattern[str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{where}: {match.group(0)} is not defined (or this test has no value for it)"
        return values[name]

    # Twice: a variable's value may itself hold a reference such as ${workspace.current_user.userName}.
    return pattern.sub(replace, pattern.sub(replace, text))


def _run_values(job: dict[str, Any], bundle_values: dict[str, str], where: str) -> dict[str, str]:
    """Plausible values of the {{...}} dynamic references at run time, job parameters at their defaults."""
    values = {"job.start_time.iso_date": RUN_DATE, "job.trigger.time.iso_date": RUN_DATE}
    for parameter in job.get("parameters", []):
        default = _substitute(str(parameter["default"]), bundle_values, BUNDLE_REF, where)
        values[f"job.parameters.{parameter['name']}"] = DYNAMIC_REF.sub(
            lambda m: values.get(m.group(1), "x"), default)
    return values


def resolved_arguments(document: dict[str, Any], target: str) -> Iterator[tuple[str, list[str]]]:
    """(job.task, argv) for every wheel task, with bundle and run-time references filled in."""
    values = _bundle_values(document, target)
    for where, job, task in wheel_tasks(document):
        run_values = _run_values(job, values, where)
        yield where, [
            _substitute(_substitute(arg, values, BUNDLE_REF, where), run_values, DYNAMIC_REF, where)
            for arg in task.get("parameters", [])
        ]


def test_bundle_has_wheel_tasks(bundle):
    assert list(wheel_tasks(bundle)), "no python_wheel_task found: nothing below would be checked"


def test_wheel_tasks_run_this_package_through_a_declared_entry_point(bundle):
    scripts = _console_scripts()
    for where, _, task in wheel_tasks(bundle):
        assert task["package_name"] == PACKAGE, where
        assert task["entry_point"] in scripts, f"{where}: entry point {task['entry_point']!r} not in setup.py"
        module, function = scripts[task["entry_point"]].split(":")
        assert callable(getattr(importlib.import_module(module), function)), where


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_wheel_task_arguments_parse_with_the_cli(bundle, target):
    assert target in bundle["targets"]
    for where, argv in resolved_arguments(bundle, target):
        try:
            args = _build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `portrait {' '.join(argv)}` is rejected by the CLI")
        if args.date is not None:
            assert args.date == dt.date.fromisoformat(RUN_DATE), f"{where}: --date is not the run date"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_wheel_task_config_loads_with_the_cluster_environment(bundle, target):
    """--conf names a config of this target, and the cluster's PORTRAIT__ variables are valid keys."""
    values = _bundle_values(bundle, target)
    for where, argv in resolved_arguments(bundle, target):
        args = _build_parser().parse_args(argv)
        job_key = where.split(".")[0]
        job = bundle["resources"]["jobs"][job_key]
        environ = {
            name: _substitute(str(value), values, BUNDLE_REF, where)
            for cluster in job.get("job_clusters", [])
            for name, value in cluster.get("new_cluster", {}).get("spark_env_vars", {}).items()
        }
        cfg = load_config(args.conf, environ=environ)
        assert cfg.environment == target, f"{where}: {args.conf} is not the {target} configuration"


def _task_order(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's tasks in an order the platform may run them (each after the tasks it depends on)."""
    tasks = {task["task_key"]: task for task in job["tasks"]}
    order = TopologicalSorter({key: [d["task_key"] for d in task.get("depends_on", [])] for key, task in tasks.items()})
    return [tasks[key] for key in order.static_order()]


def test_the_bundle_schedules_exactly_the_graph_portrait_daily_runs(bundle):
    jobs = bundle["resources"]["jobs"]
    for job_key, tasks in (("portrait_daily", graph.DAILY), ("portrait_weekly_training", graph.WEEKLY)):
        ordered = _task_order(jobs[job_key])
        assert tuple(t["task_key"] for t in ordered) == tasks
        # Each task runs the CLI command of its own name: the stage entry point the graph calls for it.
        assert [t["python_wheel_task"]["parameters"][0] for t in ordered] == list(tasks)
    assert set(graph.TASKS) == {*graph.DAILY, *graph.WEEKLY}


def test_job_clusters_are_defined_once_and_used(bundle):
    for job_key, job in bundle["resources"]["jobs"].items():
        keys = [c["job_cluster_key"] for c in job.get("job_clusters", [])]
        assert len(keys) == len(set(keys)), f"{job_key}: a job cluster key is defined twice"
        for task in job["tasks"]:
            if "job_cluster_key" in task:
                assert task["job_cluster_key"] in keys, f"{job_key}.{task['task_key']}: unknown cluster"


# ------------------------------------------------------------------------------------ helper self-checks


def test_merge_rejects_a_scalar_defined_twice():
    with pytest.raises(ValueError, match="bundle.name is defined"):
        _merge({"bundle": {"name": "a"}}, {"bundle": {"name": "b"}})
    assert _merge({"resources": {"jobs": {"a": {}}}}, {"resources": {"jobs": {"b": {}}}}) == {
        "resources": {"jobs": {"a": {}, "b": {}}}}


def test_unknown_reference_is_reported():
    with pytest.raises(AssertionError, match=r"\$\{var.nope\}"):
        _substitute("${var.nope}", {}, BUNDLE_REF, "job.task")
