"""pytest plugin (entry point ``pytest11``): markers, options, capability skips, the record of
results and the clause report.

Inert for tests that use none of it: the target is loaded only when a collected test carries a
``clause`` or ``requires`` marker, and the mock cloud starts only when a test asks for the
``cloud`` fixture (or one built on it). The fixtures live in :mod:`conformance.fixtures`.
"""

import difflib
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

# hypothesis_profiles is imported for its side effect: the ci/dev profiles must exist before
# Hypothesis's own plugin reads --hypothesis-profile in pytest_configure.
from conformance import calls, hypothesis_profiles  # noqa: F401
from conformance.clauses import CLAUSES
from conformance.report import build_report, write_report
from conformance.results import Recorder, troubleshooting_note
from conformance.targets import (
    ALL_CAPABILITIES,
    ENV_VAR,
    Target,
    TargetError,
    default_spec,
    load_target,
    target_versions,
    unavailable_reason,
)

pytest_plugins = ["conformance.fixtures"]

CONTROL_KEY_ENV = "SESSIONSPEC_CONTROL_KEY"


class SuiteState:
    """Per-run state of the plugin, kept in ``config.stash``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.spec: str = config.getoption("sessionspec_target") or default_spec()
        self.recorder = Recorder()
        self.requirements: dict[str, frozenset[str]] = {}  # nodeid -> capabilities needed
        self.clauses: list[str] = clause_selection(config.getoption("sessionspec_clauses") or [])
        self.started = time.time()
        self._target: Target | None = None

    @property
    def target_loaded(self) -> bool:
        return self._target is not None

    def target(self) -> Target:
        """The target under test, loaded on first use; a bad spec is a usage error."""
        if self._target is None:
            try:
                self._target = load_target(self.spec)
            except TargetError as exc:
                raise pytest.UsageError(f"--target: {exc}") from exc
        return self._target

    def close(self) -> None:
        close = getattr(self._target, "close", None)
        if callable(close):
            calls.call(close())

    # Registered as a plugin of its own so these hooks reach this run's state.
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.recorder.add(report)


STATE = pytest.StashKey[SuiteState]()


def clause_selection(values: Iterable[str]) -> list[str]:
    """The clause ids of ``--clause`` options (each may hold several, comma-separated), in the
    order given; an id not in the registry is a usage error, with the nearest ids as a hint."""
    ids = list(dict.fromkeys(part.strip() for v in values for part in v.split(",")))
    ids = [cid for cid in ids if cid]
    unknown = [cid for cid in ids if cid not in CLAUSES]
    if unknown:
        hints = []
        for cid in unknown:
            close = difflib.get_close_matches(cid.upper(), list(CLAUSES), n=3)
            hints.append(f"{cid!r} (did you mean {', '.join(close)}?)" if close else repr(cid))
        raise pytest.UsageError(
            f"--clause: unknown clause id {', '.join(hints)}; the ids are in "
            "conformance/clauses.toml"
        )
    return ids


def suite_state(config: pytest.Config) -> SuiteState:
    return config.stash[STATE]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sessionspec", "sessionspec conformance suite")
    group.addoption(
        "--target",
        dest="sessionspec_target",
        default=None,
        metavar="SPEC",
        help=f"the SDK under test: a built-in name (reference, moss), 'package.module:ATTR', or "
        f"an entry point of group sessionspec.targets (default: ${ENV_VAR}, else reference)",
    )
    group.addoption(
        "--cloud-url",
        dest="sessionspec_cloud_url",
        default=None,
        metavar="URL",
        help="use this running mock cloud (e.g. `sessionspec serve`) instead of starting one",
    )
    group.addoption(
        "--control-key",
        dest="sessionspec_control_key",
        default=None,
        metavar="KEY",
        help=f"control-API key of the --cloud-url cloud (default: ${CONTROL_KEY_ENV})",
    )
    group.addoption(
        "--cloud-mode",
        dest="sessionspec_cloud_mode",
        choices=("auto", "thread", "process"),
        default="auto",
        help="where the started mock cloud runs: a thread of this process, a child process, or "
        "auto (a thread only for targets that declare threaded_cloud_ok)",
    )
    group.addoption(
        "--clause",
        dest="sessionspec_clauses",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of clause ID (repeatable; or comma-separated ids); the others "
        "are deselected and left out of the report",
    )
    group.addoption(
        "--sessionspec-report-dir",
        dest="sessionspec_report_dir",
        default=None,
        metavar="DIR",
        help="write the clause report (report.json, report.md) into DIR when the run ends",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clause(id, ...): the clauses of the SessionIndex document this test checks"
    )
    config.addinivalue_line(
        "markers", "requires(capability, ...): target capabilities this test needs beyond its "
        "clauses' own"
    )
    state = config.stash[STATE] = SuiteState(config)
    config.pluginmanager.register(state, "sessionspec-state")


def _marker_args(item: pytest.Item, name: str) -> list[str]:
    return [arg for marker in item.iter_markers(name) for arg in marker.args]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = suite_state(config)
    problems: list[str] = []
    for item in items:
        clause_ids = _marker_args(item, "clause")
        extra = _marker_args(item, "requires")
        if not clause_ids and not extra and item.get_closest_marker("clause") is None:
            continue
        if not clause_ids:
            problems.append(f"{item.nodeid}: @pytest.mark.clause() names no clause id")
        unknown = [c for c in clause_ids if c not in CLAUSES]
        if unknown:
            problems.append(
                f"{item.nodeid}: unknown clause id(s) {unknown} (not in conformance/clauses.toml)"
            )
        bad_caps = [c for c in extra if c not in ALL_CAPABILITIES]
        if bad_caps:
            problems.append(
                f"{item.nodeid}: unknown capability {bad_caps} in @pytest.mark.requires; "
                f"known: {sorted(ALL_CAPABILITIES)}"
            )
        needed = set(extra)
        for cid in clause_ids:
            if cid in CLAUSES:
                needed |= CLAUSES[cid].requires
        state.requirements[item.nodeid] = frozenset(needed)
        doc = getattr(getattr(item, "obj", None), "__doc__", None)
        clause_ids = list(dict.fromkeys(clause_ids))
        state.recorder.expect(item.nodeid, clause_ids, troubleshooting_note(doc))
        for cid in clause_ids:
            # JUnit XML carries them as <property name="clause" value="...">.
            item.user_properties.append(("clause", cid))
    if problems:
        raise pytest.UsageError("clause markers:\n  " + "\n  ".join(problems))
    if state.clauses:
        _deselect_other_clauses(config, items, frozenset(state.clauses))
    if state.requirements:
        state.target()  # fail fast on a bad --target, before any test runs


def _deselect_other_clauses(
    config: pytest.Config, items: list[pytest.Item], wanted: frozenset[str]
) -> None:
    """Keep the tests that check at least one of ``wanted``; tests tied to no clause go too,
    since they cannot speak for the clauses asked about."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if wanted.intersection(_marker_args(item, "clause")) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = suite_state(item.config)
    needed = state.requirements.get(item.nodeid)
    if needed is None:
        return
    # Skip before fixtures run, so a test that cannot apply never starts a cloud or a client.
    target = state.target()
    reason = unavailable_reason(target)
    if reason:
        pytest.skip(reason)
    missing = sorted(needed - frozenset(target.capabilities))
    if missing:
        noun = "capability" if len(missing) == 1 else "capabilities"
        pytest.skip(f"target {target.name!r} lacks {noun}: {', '.join(missing)}")


def redact(argv: list[str]) -> list[str]:
    """``argv`` without the control key, which has no place in a report."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
        elif arg.startswith("--control-key="):
            out.append("--control-key=***")
        else:
            out.append(arg)
        hide = arg == "--control-key"
    return out


def run_info(state: SuiteState) -> dict[str, Any]:
    target: dict[str, Any] = {"spec": state.spec, "name": state.spec, "versions": {}}
    try:
        loaded = state.target()
    except pytest.UsageError as exc:
        target["error"] = str(exc)
    else:
        target.update(
            name=loaded.name,
            versions=target_versions(loaded),
            capabilities=sorted(loaded.capabilities),
        )
        if unavailable_reason(loaded):
            target["unavailable"] = unavailable_reason(loaded)
    argv = [Path(sys.argv[0]).name, *redact(sys.argv[1:])] if sys.argv else []
    selection = {"selected_clauses": list(state.clauses)} if state.clauses else {}
    return {
        "target": target,
        **selection,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "started_at": datetime.fromtimestamp(state.started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - state.started, 3),
        "command": shlex.join(argv),
        "cwd": os.getcwd(),
    }


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = suite_state(session.config)
    try:
        directory = session.config.getoption("sessionspec_report_dir")
        if directory:
            # Clauses left out by --clause are left out of the report too: listed as UNTESTED
            # they would read as gaps, and a test checking a selected clause and another one
            # would give that other clause a verdict from part of its tests.
            clauses = (
                {cid: c for cid, c in CLAUSES.items() if cid in state.clauses}
                if state.clauses
                else CLAUSES
            )
            report = build_report(run_info(state), clauses, state.recorder.records.values())
            report.run["pytest_exit_status"] = int(exitstatus)
            write_report(report, Path(directory))
    finally:
        try:
            if state.target_loaded:
                state.close()
        finally:
            calls.close_loop()
