"""``sessionspec run``: the suite against one target, a progress bar, a clause table, a report.

pytest runs in this process, isolated from the configuration of the directory it is started
in (an empty ini file, the suite's own rootdir), so a repository's ``addopts`` or conftest
files cannot change what the suite does. The plugin writes ``report.json`` / ``report.md``;
this module shows them.
"""

import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from conformance.plugin import clause_selection
from conformance.report import JUNIT_XML, REPORT_JSON, REPORT_MD, target_title
from conformance.targets import TargetError, default_spec, load_target, target_versions

SUITE_PACKAGE = "conformance.suite"
DEFAULT_REPORT_DIR = Path("sessionspec-report")
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "SKIP": "yellow", "UNTESTED": "dim"}
# pytest's own failures to run at all; they win over the clause verdicts.
_PYTEST_BROKE = {
    pytest.ExitCode.INTERRUPTED,
    pytest.ExitCode.INTERNAL_ERROR,
    pytest.ExitCode.USAGE_ERROR,
    pytest.ExitCode.NO_TESTS_COLLECTED,
}


@dataclass
class RunOptions:
    target: str | None = None
    report_dir: Path = DEFAULT_REPORT_DIR
    keyword: str | None = None
    clauses: list[str] = field(default_factory=list)
    cloud_url: str | None = None
    control_key: str | None = None
    cloud_mode: str = "auto"
    verbose: bool = False
    pytest_args: list[str] = field(default_factory=list)


class ProgressPlugin:
    """A rich progress bar in place of pytest's terminal output; failures print as they come."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.fields[label]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.console.print(f"[bold red]collection error[/] in {report.nodeid or 'the suite'}")
            self.console.print(str(report.longrepr), markup=False, highlight=False)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.start()
        self.task = self.progress.add_task("", total=len(session.items), label="suite", current="")

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=location[2])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            where = "" if report.when == "call" else f" (in {report.when})"
            self.console.print(
                Text.assemble(("FAIL ", "bold red"), report.nodeid + where, "\n    ",
                              (message.splitlines()[0] if message else "", "red"))
            )
        if report.when == "teardown" and self.task is not None:
            self.progress.advance(self.task)

    def pytest_sessionfinish(self) -> None:
        self.progress.stop()


def suite_root() -> tuple[Path, Path]:
    """The suite's directory and the directory its top-level package lives in."""
    spec = importlib.util.find_spec(SUITE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"cannot find the {SUITE_PACKAGE} package")
    suite_dir = Path(next(iter(spec.submodule_search_locations)))
    return suite_dir, suite_dir.parent.parent


def plugin_name() -> str:
    """How ``-p`` names the plugin: its entry point (which pytest loads once, whether or not
    plugin autoloading is disabled), or the module when the project is not installed."""
    if metadata.entry_points(group="pytest11", name="sessionspec"):
        return "sessionspec"
    return "conformance.plugin"


def pytest_arguments(options: RunOptions, ini: Path) -> list[str]:
    suite_dir, root = suite_root()
    report_dir = options.report_dir.resolve()
    args = [
        "--pyargs", SUITE_PACKAGE,
        "-c", str(ini),
        "--rootdir", str(root),
        "--confcutdir", str(suite_dir),
        "-p", plugin_name(),
        "-p", "no:cacheprovider",
        "--sessionspec-report-dir", str(report_dir),
        "--junitxml", str(report_dir / JUNIT_XML),
        "--cloud-mode", options.cloud_mode,
    ]
    if options.target:
        args += ["--target", options.target]
    if options.keyword:
        args += ["-k", options.keyword]
    for clause in options.clauses:
        args += ["--clause", clause]
    if options.cloud_url:
        args += ["--cloud-url", options.cloud_url]
    if options.control_key:
        # One argument: a key starting with "-" must not be read as an option of its own.
        args.append(f"--control-key={options.control_key}")
    args += ["-q", "-rfEs"] if options.verbose else ["-p", "no:terminal"]
    return args + list(options.pytest_args)


def _reason(clause: dict[str, Any]) -> str:
    reason = clause.get("reason") or ""
    return reason.splitlines()[0][:200] if reason else ""


def clause_table(report: dict[str, Any], with_reasons: bool = True) -> Table:
    run = report["run"]
    table = Table(title=f"sessionspec: {target_title(run)}", title_justify="left")
    table.add_column("Clause", no_wrap=True)
    table.add_column("Strength")
    table.add_column("Status", no_wrap=True)
    table.add_column("Tests", justify="right")
    if with_reasons:
        table.add_column("Reason", overflow="fold", max_width=70)
    for clause in report["clauses"]:
        tests = clause["tests"]
        passed = sum(1 for t in tests if t["status"] in ("passed", "xpass"))
        row = [
            clause["id"],
            clause["strength"],
            Text(clause["status"], style=STATUS_STYLE.get(clause["status"], "")),
            f"{passed}/{len(tests)}" if tests else "-",
        ]
        table.add_row(*row, *([_reason(clause)] if with_reasons else []))
    counts = report["summary"]
    table.caption = ", ".join(f"{counts[s]} {s}" for s in STATUS_STYLE)
    return table


def print_clauses(console: Console, report: dict[str, Any]) -> None:
    """The clause table; on a narrow console the reasons follow it instead of a column."""
    wide = console.width >= 110
    console.print(clause_table(report, with_reasons=wide))
    if not wide:
        for clause in report["clauses"]:
            if clause["status"] in ("FAIL", "SKIP") and _reason(clause):
                style = STATUS_STYLE[clause["status"]]
                console.print(Text.assemble((f"{clause['status']} ", style), clause["id"], ": ",
                                            _reason(clause)))


def run(options: RunOptions, console: Console | None = None) -> int:
    """Run the suite; returns 0 when every MUST clause that applied passed."""
    console = console or Console()
    try:
        clauses = clause_selection(options.clauses)
    except pytest.UsageError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return int(pytest.ExitCode.USAGE_ERROR)
    # As `python -m` would: a `package.module:ATTR` target in the current directory imports.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        checked = load_target(options.target or default_spec())
    except TargetError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return int(pytest.ExitCode.USAGE_ERROR)
    versions = ", ".join(f"{k} {v}" for k, v in target_versions(checked).items())
    shown = f"{checked.name} ({versions})" if versions else checked.name
    console.print(Text.assemble("Checking target ", (shown, "bold")))
    if clauses:
        console.print(Text.assemble("Only ", (", ".join(clauses), "bold"), " (--clause)"))
    close = getattr(checked, "close", None)
    if callable(close):
        close()

    report_path = options.report_dir / REPORT_JSON
    report_path.unlink(missing_ok=True)  # a stale report must not pass for this run's
    with tempfile.TemporaryDirectory(prefix="sessionspec-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n", "utf-8")
        plugins: list[object] = [] if options.verbose else [ProgressPlugin(console)]
        code = pytest.main(pytest_arguments(options, ini), plugins=plugins)

    if not report_path.exists():
        console.print(f"[bold red]no report was written[/] (pytest exit status {int(code)})")
        return int(code) or 1
    report = json.loads(report_path.read_text("utf-8"))
    print_clauses(console, report)
    verdict = report["exit_status"]
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and clauses:
        matching = f" and matches -k {options.keyword!r}" if options.keyword else ""
        console.print(f"[bold red]no suite test checks[/] {', '.join(clauses)}{matching}",
                      highlight=False)
        verdict = int(code)
    elif code in _PYTEST_BROKE:
        console.print(f"[bold red]pytest could not run the suite[/] (exit status {int(code)})")
        verdict = int(code)
    else:
        style = "bold green" if verdict == 0 else "bold red"
        console.print(Text(report["summary"]["verdict"], style=style))
    console.print(
        f"Report: {options.report_dir / REPORT_MD}, {report_path}, {options.report_dir / JUNIT_XML}"
    )
    return verdict


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--target", default=None, metavar="SPEC",
        help="built-in name (reference, moss), package.module:ATTR, or an entry point of group "
        "sessionspec.targets (default: $SESSIONSPEC_TARGET, else reference)",
    )
    parser.add_argument(
        "--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR",
        help="where report.json, report.md and junit.xml go (default: ./%(default)s)",
    )
    parser.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                        help="only tests matching this pytest -k expression")
    parser.add_argument("--clause", dest="clauses", action="append", default=[], metavar="ID",
                        help="only the tests of clause ID (repeatable, or comma-separated ids); "
                        "the report lists only those clauses")
    parser.add_argument("--cloud-url", default=None, metavar="URL",
                        help="use this running mock cloud instead of starting one")
    parser.add_argument("--control-key", default=None, metavar="KEY",
                        help="the --cloud-url cloud's control-API key "
                        "(default: $SESSIONSPEC_CONTROL_KEY)")
    parser.add_argument("--cloud-mode", choices=("auto", "thread", "process"), default="auto",
                        help="run the started mock cloud on a thread or in a child process "
                        "(default: auto, a thread only for targets that allow it)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="pytest's own output (with tracebacks) instead of a progress bar")
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARG",
                        help="further arguments for pytest, after --")


def options_from(args: Any) -> RunOptions:
    return RunOptions(
        target=args.target,
        report_dir=args.report_dir,
        keyword=args.keyword,
        clauses=list(args.clauses or []),
        cloud_url=args.cloud_url,
        control_key=args.control_key,
        cloud_mode=args.cloud_mode,
        verbose=args.verbose,
        pytest_args=list(args.pytest_args),
    )
