"""Per-clause verdicts from one run's test records, and the files that carry them.

A clause is PASS when its tests passed, FAIL when any of them failed, SKIP when all of them were
skipped (the reasons say why, e.g. a missing capability), UNTESTED when no test of it ran. Only
a failed MUST clause fails the run: SHOULD failures are reported, never fatal.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.clauses import Clause
from conformance.results import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    XFAIL,
    XPASS,
    TestRecord,
    measurement_summary,
)

PASS, FAIL, SKIP, UNTESTED = "PASS", "FAIL", "SKIP", "UNTESTED"
STATUSES = (PASS, FAIL, SKIP, UNTESTED)
REPORT_JSON, REPORT_MD, JUNIT_XML = "report.json", "report.md", "junit.xml"
FORMAT_VERSION = 1

# An expected failure is still a failure to conform: the clause does not hold for the target.
_FAILING = {FAILED, ERROR, XFAIL}
_PASSING = {PASSED, XPASS}


@dataclass
class ClauseVerdict:
    id: str
    strength: str
    section: str
    quote: str
    source: str
    status: str
    reason: str = ""
    tests: list[TestRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [
            {
                "nodeid": t.nodeid,
                "status": t.status,
                "message": t.message,
                "duration": round(t.duration, 4),
                **({"troubleshooting": t.troubleshooting} if t.troubleshooting else {}),
                **({"measurements": t.measurements} if t.measurements else {}),
            }
            for t in self.tests
        ]
        return data


def verdict(clause: Clause, tests: list[TestRecord]) -> ClauseVerdict:
    """The clause's status from the tests that checked it."""
    statuses = {t.status for t in tests}
    reason = ""
    if statuses & _FAILING:
        status = FAIL
        reason = next(t.message for t in tests if t.status in _FAILING)
    elif statuses & _PASSING:
        status = PASS
    elif SKIPPED in statuses:
        status = SKIP
        reason = "; ".join(dict.fromkeys(t.message for t in tests if t.status == SKIPPED))
    else:
        status = UNTESTED
    return ClauseVerdict(
        clause.id, clause.strength, clause.section, clause.quote, clause.source, status, reason,
        list(tests),
    )


def build_verdicts(
    clauses: Mapping[str, Clause], records: Iterable[TestRecord]
) -> list[ClauseVerdict]:
    """One verdict per registry clause, in registry order."""
    by_clause: dict[str, list[TestRecord]] = {cid: [] for cid in clauses}
    for record in records:
        for cid in dict.fromkeys(record.clauses):
            if cid in by_clause:
                by_clause[cid].append(record)
    return [verdict(clauses[cid], tests) for cid, tests in by_clause.items()]


def exit_status(verdicts: Iterable[ClauseVerdict]) -> int:
    """0 when every MUST clause that applied passed (SKIP and UNTESTED do not apply), else 1."""
    failed = any(v.status == FAIL and v.strength == "MUST" for v in verdicts)
    return 1 if failed else 0


def verdict_sentence(verdicts: Iterable[ClauseVerdict]) -> str:
    """One line for the end of a run: did the target fail any MUST clause?"""
    verdicts = list(verdicts)
    failed = [v.id for v in verdicts if v.status == FAIL and v.strength == "MUST"]
    if failed:
        return f"FAIL: MUST clauses failed: {', '.join(failed)}"
    tested = sum(1 for v in verdicts if v.status in (PASS, FAIL))
    untested = sum(1 for v in verdicts if v.status == UNTESTED)
    text = f"PASS: every MUST clause that applied passed ({tested} of {len(verdicts)} tested"
    return text + (f", {untested} untested)" if untested else ")")


def summary(verdicts: Iterable[ClauseVerdict]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for v in verdicts:
        counts[v.status] += 1
    return counts


@dataclass
class Report:
    run: dict[str, Any]
    verdicts: list[ClauseVerdict]
    unassigned: list[TestRecord] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return exit_status(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        failed_must = [v.id for v in self.verdicts if v.status == FAIL and v.strength == "MUST"]
        return {
            "format": FORMAT_VERSION,
            "run": self.run,
            "summary": {
                **summary(self.verdicts),
                "failed_must": failed_must,
                "verdict": verdict_sentence(self.verdicts),
            },
            "exit_status": self.exit_status,
            "clauses": [v.to_json() for v in self.verdicts],
            "unassigned_tests": [t.to_json() for t in self.unassigned],
        }


def build_report(
    run: dict[str, Any], clauses: Mapping[str, Clause], records: Iterable[TestRecord]
) -> Report:
    records = list(records)
    return Report(
        run=run,
        verdicts=build_verdicts(clauses, records),
        unassigned=[r for r in records if not r.clauses],
    )


# --- files ----------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def target_title(run: Mapping[str, Any]) -> str:
    target = run.get("target", {})
    versions = ", ".join(f"{k} {v}" for k, v in target.get("versions", {}).items())
    return f"{target.get('name', '?')}" + (f" ({versions})" if versions else "")


def render_markdown(report: Report) -> str:
    run = report.run
    lines = [
        f"# sessionspec report: {target_title(run)}",
        "",
        f"**{verdict_sentence(report.verdicts)}**",
        "",
        ", ".join(f"{n} {s}" for s, n in summary(report.verdicts).items())
        + f". Python {run.get('python', '?')} on {run.get('platform', '?')}; "
        f"started {run.get('started_at', '?')}, took {run.get('duration_s', 0):.1f} s.",
        "",
        f"Command: `{run.get('command', '')}`",
        "",
        "| Clause | Strength | Status | Tests | Reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in report.verdicts:
        passed = sum(1 for t in v.tests if t.status in _PASSING)
        tests = f"{passed}/{len(v.tests)}" if v.tests else "-"
        lines.append(
            f"| `{v.id}` | {v.strength} | **{v.status}** | {tests} | {_cell(v.reason)[:200]} |"
        )
    failures = [(v, t) for v in report.verdicts for t in v.tests if t.status in _FAILING]
    if failures:
        lines += ["", "## Failures", ""]
        for v, t in failures:
            lines += [f"### {v.id} ({v.strength}): `{t.nodeid}`", "", f"> {v.quote}", ""]
            lines += ["```", t.message.strip(), "```", ""]
            if t.troubleshooting:
                lines += [f"Troubleshooting: {t.troubleshooting}", ""]
    measured = [(v, t) for v in report.verdicts for t in v.tests if t.measurements]
    if measured:
        lines += ["", "## Measurements", ""]
        lines += [f"- `{v.id}` `{t.nodeid}`: {measurement_summary(t.measurements)}"
                  for v, t in measured]
    if report.unassigned:
        lines += ["", "## Tests tied to no clause", ""]
        lines += [f"- `{t.nodeid}`: {t.status}" for t in report.unassigned]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: Report, directory: Path) -> dict[str, Path]:
    """Write ``report.json`` and ``report.md`` into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / REPORT_JSON, "md": directory / REPORT_MD}
    paths["json"].write_text(json.dumps(report.to_json(), indent=2) + "\n", "utf-8")
    paths["md"].write_text(render_markdown(report), "utf-8")
    return paths
