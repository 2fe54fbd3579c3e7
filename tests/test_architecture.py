"""The package's shape: layers that only import downwards, no import cycle, modules and functions that stay
readable. The layers are drawn in docs/ARCHITECTURE.md; this test holds the code to the picture."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "portrait"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# Lowest first. A module may import from its own layer and the layers below it, never from a layer above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"config", "schemas", "spark", "jvm", "privacy"}),
    ("storage", {"faults", "io", "erasure_io", "evolve", "files", "lakehouse"}),
    ("transformations", {"features", "ingest", "model", "publish", "monitor", "erasure", "generate"}),
    ("stages", {"audit", "stages"}),
    ("graph", {"graph"}),
    ("entry points", {"commands", "serve", "cli"}),
]
# Pure transformations never reach storage themselves: the stages read and write for them.
PURE = {"features", "ingest", "publish", "monitor", "erasure", "generate"}


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
            for path in PACKAGE.rglob("*.py")}


def _top(module: str) -> str:
    """The first name below ``portrait``: ``portrait.stages.score`` → ``stages``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported portrait module, whether the import is inside a function) of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("portrait"):
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(target, id(node) in nested) for target in targets if target.split(".")[:2] != ["portrait"]]
            if node.module == "portrait":
                found += [(f"portrait.{alias.name}", id(node) in nested) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, id(node) in nested) for alias in node.names if alias.name.startswith("portrait")]
    return found


def _layer(module: str) -> int:
    top = _top(module)
    return next(i for i, (_, names) in enumerate(LAYERS) if top in names)


def test_every_module_belongs_to_a_layer():
    unplaced = sorted({_top(m) for m in _modules()} - {""} - set().union(*(names for _, names in LAYERS)))
    assert not unplaced, f"modules outside every layer of LAYERS: {unplaced}"


def test_imports_only_point_down_and_pure_code_never_reaches_storage():
    modules = _modules()
    upward, impure = [], []
    for module, path in modules.items():
        if not _top(module):
            continue
        for target, _ in _imports(path):
            if target not in modules or not _top(target):
                continue
            if _layer(target) > _layer(module):
                upward.append(f"{module} → {target}")
            if _top(module) in PURE and _top(target) in {"io", "lakehouse", "files", "stages", "audit"}:
                impure.append(f"{module} → {target}")
    assert not upward, "imports from a higher layer: " + "; ".join(sorted(upward))
    assert not impure, "pure transformations reaching storage: " + "; ".join(sorted(impure))


# Deferred on purpose: the console script parses its arguments before Spark and MLflow load, and matplotlib
# loads only when a training run draws its evaluation plots.
DEFERRED_IMPORTS = {("portrait.cli", "portrait.commands"), ("portrait.model.tracking", "portrait.model.plots"),
                    ("portrait.model.tracking", "portrait.model.plots.close"),
                    ("portrait.model.tracking", "portrait.model.plots.evaluation_figures"),
                    ("portrait.model.tracking", "portrait.model.plots.value_holdout_figure")}


def test_portrait_modules_are_imported_at_module_level_only():
    deferred = {(m, t) for m, p in _modules().items() for t, inside in _imports(p) if inside}
    assert deferred <= DEFERRED_IMPORTS, f"function-local imports of portrait modules: {deferred - DEFERRED_IMPORTS}"


def test_no_import_cycle_between_modules():
    modules = _modules()
    edges = {m: {t for t, inside in _imports(p) if t in modules and t != m and not inside}
             for m, p in modules.items()}
    try:
        tuple(TopologicalSorter(edges).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' → '.join(exc.args[1])}")


def test_modules_and_functions_stay_short():
    long_modules, long_functions = [], []
    for module, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{module} ({text.count(chr(10))} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name} ({length} lines)")
    assert not long_modules, f"modules over {MAX_MODULE_LINES} lines: {long_modules}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


def test_the_checks_above_see_a_violation():
    assert _layer("portrait.features.rollups") < _layer("portrait.stages.rollups") < _layer("portrait.graph")
    assert ("portrait.lakehouse", False) in _imports(PACKAGE / "stages" / "features.py")
