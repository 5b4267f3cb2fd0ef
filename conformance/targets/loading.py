"""``load_target(spec)``: from a name on the command line to a :class:`Target`."""

import importlib
import inspect
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

from conformance.targets.moss_sdk import moss_target
from conformance.targets.protocol import Target, protocol_problems
from conformance.targets.reference import reference_target

ENV_VAR = "SESSIONSPEC_TARGET"
ENTRY_POINT_GROUP = "sessionspec.targets"
DEFAULT_TARGET = "reference"
BUILTIN_TARGETS: dict[str, Callable[[], Any]] = {
    "reference": reference_target,
    "moss": moss_target,
}


class TargetError(Exception):
    """A target spec that cannot be resolved, or resolves to something that is not a target."""


def default_spec() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_TARGET


def _import_attr(spec: str) -> Any:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise TargetError(f"target {spec!r}: expected 'package.module:ATTR'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"target {spec!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(
                f"target {spec!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from None
    return obj


def _entry_point(spec: str) -> Any | None:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == spec:
            try:
                return entry.load()
            except Exception as exc:
                raise TargetError(
                    f"target {spec!r}: entry point {entry.value!r} in group "
                    f"{ENTRY_POINT_GROUP!r} failed to load: {exc}"
                ) from exc
    return None


def _materialise(obj: Any, spec: str) -> Any:
    """A target instance as is; a class or a zero-argument factory is called once."""
    if inspect.isclass(obj) or (callable(obj) and protocol_problems(obj)):
        try:
            obj = obj()
        except Exception as exc:
            raise TargetError(f"target {spec!r}: calling {obj!r} failed: {exc}") from exc
    return obj


def load_target(spec: str | None = None) -> Target:
    """Resolve ``spec``: a built-in name (``reference``, ``moss``), ``package.module:ATTR``
    (a target, a class or a zero-argument factory), or the name of an entry point in the
    ``sessionspec.targets`` group. None means ``$SESSIONSPEC_TARGET``, else ``reference``."""
    spec = (spec or default_spec()).strip()
    if spec in BUILTIN_TARGETS:
        obj = BUILTIN_TARGETS[spec]()
    elif ":" in spec:
        obj = _import_attr(spec)
    else:
        obj = _entry_point(spec)
        if obj is None:
            known = ", ".join(sorted(BUILTIN_TARGETS))
            raise TargetError(
                f"target {spec!r}: not a built-in target ({known}), not 'package.module:ATTR', "
                f"and no entry point of that name in group {ENTRY_POINT_GROUP!r}"
            )
    target = _materialise(obj, spec)
    problems = protocol_problems(target)
    if problems:
        raise TargetError(
            f"target {spec!r} does not satisfy the Target protocol: " + "; ".join(problems)
        )
    return target
