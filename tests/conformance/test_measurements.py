"""Measurements a suite test attaches (``record_measurement``) reach the test record, the
passing test's message and both report files."""

import json

import pytest

from conformance.clauses import Clause
from conformance.report import build_report, write_report
from conformance.results import MEASUREMENT, Recorder, measurement_summary


def report_of(when: str, outcome: str, properties: list, longrepr=None) -> pytest.TestReport:
    return pytest.TestReport(
        "t::latency", ("t.py", 1, "latency"), {}, outcome, longrepr, when,
        user_properties=properties,
    )


def test_measurements_reach_record_message_and_reports(tmp_path):
    recorder = Recorder()
    recorder.expect("t::latency", ["S"], None)
    p50 = (MEASUREMENT, {"name": "query_p50_ms", "value": 1.23456, "unit": "ms", "docs": 1000})
    recorder.add(report_of("setup", "passed", [("clause", "S")]))
    recorder.add(report_of("call", "passed", [("clause", "S"), p50]))
    recorder.add(report_of("teardown", "passed", [("clause", "S"), p50]))
    record = recorder.records["t::latency"]
    assert record.status == "passed"
    assert record.measurements == {"query_p50_ms": {"value": 1.23456, "unit": "ms", "docs": 1000}}
    assert record.message == "query_p50_ms=1.235 ms"

    clauses = {"S": Clause("S", "Section", "quick", "SHOULD")}
    report = build_report({"target": {"name": "x"}}, clauses, recorder.records.values())
    paths = write_report(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    test = data["clauses"][0]["tests"][0]
    assert test["measurements"]["query_p50_ms"]["value"] == 1.23456
    assert "query_p50_ms=1.235 ms" in paths["md"].read_text()


def test_failed_test_keeps_its_failure_message():
    recorder = Recorder()
    recorder.expect("t::latency", ["S"], None)
    p50 = (MEASUREMENT, {"name": "query_p50_ms", "value": 500.0, "unit": "ms"})
    recorder.add(report_of("call", "failed", [p50], longrepr="AssertionError: too slow"))
    record = recorder.records["t::latency"]
    assert record.status == "failed"
    assert "too slow" in record.message
    assert record.measurements["query_p50_ms"]["value"] == 500.0


def test_summary_formats():
    assert measurement_summary({"n": {"value": 3, "unit": ""}, "t": {"value": 0.5}}) == "n=3, t=0.5"
