"""Per-clause verdicts, the exit status and the report files, from synthetic results."""

import json

import pytest

from conformance.clauses import Clause
from conformance.report import (
    FAIL,
    PASS,
    SKIP,
    UNTESTED,
    build_report,
    build_verdicts,
    exit_status,
    verdict,
    write_report,
)
from conformance.results import TestRecord

MUST = Clause("M", "Section", "a must sentence", "MUST")
SHOULD = Clause("S", "Section", "a should sentence", "SHOULD")
CLAUSES = {"M": MUST, "S": SHOULD, "U": Clause("U", "Section", "untested", "MUST")}


def rec(status, *clauses, message="", nodeid=None):
    return TestRecord(nodeid or f"t::{status}-{'-'.join(clauses)}", list(clauses), status, message)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["passed"], PASS),
        (["passed", "passed"], PASS),
        (["passed", "skipped"], PASS),
        (["passed", "failed"], FAIL),
        (["skipped", "error"], FAIL),
        (["xfail"], FAIL),
        (["xpass"], PASS),
        (["skipped", "skipped"], SKIP),
        ([], UNTESTED),
    ],
)
def test_verdict(statuses, expected):
    assert verdict(MUST, [rec(s, "M") for s in statuses]).status == expected


def test_fail_reason_is_the_first_failure():
    tests = [rec("passed", "M"), rec("failed", "M", message="boom"), rec("error", "M", message="x")]
    assert verdict(MUST, tests).reason == "boom"


def test_skip_reasons_are_joined_once():
    tests = [
        rec("skipped", "M", message="lacks capability: a", nodeid="t1"),
        rec("skipped", "M", message="lacks capability: a", nodeid="t2"),
        rec("skipped", "M", message="moss is not installed", nodeid="t3"),
    ]
    assert verdict(MUST, tests).reason == "lacks capability: a; moss is not installed"


def test_one_test_counts_for_each_of_its_clauses():
    verdicts = {v.id: v for v in build_verdicts(CLAUSES, [rec("passed", "M", "S")])}
    assert (verdicts["M"].status, verdicts["S"].status, verdicts["U"].status) == (
        PASS, PASS, UNTESTED,
    )


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([rec("passed", "M"), rec("passed", "S")], 0),
        ([rec("passed", "M"), rec("failed", "S")], 0),  # a SHOULD never fails the run
        ([rec("failed", "M"), rec("passed", "S")], 1),
        ([rec("skipped", "M")], 0),  # not applicable to the target
        ([], 0),  # UNTESTED is reported, not fatal
    ],
)
def test_exit_status(records, code):
    assert exit_status(build_verdicts(CLAUSES, records)) == code


def test_report_files(tmp_path):
    run = {"target": {"name": "demo", "versions": {"demo": "2.0"}}, "python": "3.11"}
    records = [
        rec("failed", "M", message="assert 1 == 2"),
        rec("passed", "S"),
        TestRecord("t::loose", [], "passed"),
    ]
    records[0].troubleshooting = "usually the cache"
    report = build_report(run, CLAUSES, records)
    paths = write_report(report, tmp_path / "out")

    data = json.loads(paths["json"].read_text())
    assert data["exit_status"] == 1
    assert data["run"]["target"]["name"] == "demo"
    assert data["summary"]["failed_must"] == ["M"]
    assert data["summary"]["FAIL"] == 1 and data["summary"]["UNTESTED"] == 1
    first = data["clauses"][0]
    assert {k: first[k] for k in ("id", "strength", "section", "quote", "status")} == {
        "id": "M", "strength": "MUST", "section": "Section", "quote": "a must sentence",
        "status": "FAIL",
    }
    assert first["tests"][0]["message"] == "assert 1 == 2"
    assert set(first["tests"][0]) >= {"nodeid", "status", "message", "duration"}
    assert [t["nodeid"] for t in data["unassigned_tests"]] == ["t::loose"]

    markdown = paths["md"].read_text()
    assert "demo (demo 2.0)" in markdown
    assert "| `M` | MUST | **FAIL** |" in markdown
    assert "Troubleshooting: usually the cache" in markdown
    assert "FAIL: MUST clauses failed: M" in markdown
