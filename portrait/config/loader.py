"""Loading: ``base.yml``, the environment file and ``PORTRAIT__…`` variables merged and validated once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from portrait.config.base import ConfigError
from portrait.config.root import Config

ENV_PREFIX = "PORTRAIT__"
BASE_FILE_NAME = "base.yml"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any], origin: str, origins: dict[str, str],
           prefix: str = "") -> dict[str, Any]:
    """Deep-merge ``overlay`` into ``base``, recording which source set each dotted key."""
    merged = dict(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key != "options":
            merged[key] = _merge(dict(merged[key]), value, origin, origins, f"{dotted}.")
        else:
            merged[key] = value
            origins[dotted] = origin
            if isinstance(value, Mapping):
                for sub in value:
                    origins[f"{dotted}.{sub}"] = origin
    return merged


def _mapping_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The typed defaults that are mappings (e.g. ``ingest.generic.mapping``), nested by section.

    Files and variables are merged into these, so a mapping they set extends or overrides the default's keys
    one by one rather than replacing the whole default (``spark.options`` is replaced, as in :func:`_merge`).
    """
    defaults: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            nested = _mapping_defaults(section)
            if nested:
                defaults[key] = nested
        elif not field.is_required() and key != "options":
            value = field.get_default(call_default_factory=True)
            if isinstance(value, Mapping) and value:
                defaults[key] = dict(value)
    return defaults


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    overrides = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            raise ConfigError(f"environment variable {name} names no config key")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name}: value {raw!r} is not a YAML scalar") from exc
        nested: dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        overrides.append((f"environment variable {name}", nested))
    return overrides


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration for one environment file.

    Parameters
    ----------
    path:
        An environment file such as ``conf/local.yml``. ``base.yml`` in the same folder is read first and the
        file is laid over it. Passing ``base.yml`` itself is allowed.
    environ:
        Environment variables to take ``PORTRAIT__…`` overrides from; defaults to ``os.environ``.

    Returns
    -------
    Config
        The validated, immutable configuration.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, an unknown key, a wrong type or a missing value; the message
        names the dotted key and the file or environment variable it came from.
    """
    env_file = Path(path)
    base_file = env_file.parent / BASE_FILE_NAME
    origins: dict[str, str] = {}
    merged = _mapping_defaults(Config)
    sources = [base_file] if base_file.exists() and base_file.resolve() != env_file.resolve() else []
    sources.append(env_file)
    for source in sources:
        merged = _merge(merged, _read_yaml(source), str(source), origins)
    for origin, nested in _env_overrides(os.environ if environ is None else environ):
        merged = _merge(merged, nested, origin, origins)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins, str(env_file))) from None


def _shortened(text: str, limit: int = 200) -> str:
    # A whole section (e.g. the tag list) can be the offending input: its first characters are enough.
    return text if len(text) <= limit else text[:limit] + " …"


def _describe(exc: ValidationError, origins: Mapping[str, str], default_origin: str) -> str:
    lines = []
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        dotted = ".".join(location)
        origin = next(
            (origins[".".join(location[:i])] for i in range(len(location), 0, -1)
             if ".".join(location[:i]) in origins),
            default_origin,
        )
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; the allowed keys are the fields of portrait/config/)"
        elif error["type"] == "missing":
            message = "missing value: this key is required"
        else:
            message = f"{error['msg']} (got {_shortened(repr(error.get('input')))})"
        lines.append(f"{origin}: key '{dotted}': {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
