"""What one run recorded per test, collected from pytest's reports for the clause report."""

from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

PASSED, FAILED, ERROR, SKIPPED, XFAIL, XPASS = (
    "passed", "failed", "error", "skipped", "xfail", "xpass"
)
MAX_MESSAGE = 2000
MEASUREMENT = "measurement"  # the user_properties key of a recorded measurement


@dataclass
class TestRecord:
    """One test's result: which clauses it checks, how it ended and why."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    clauses: list[str] = field(default_factory=list)
    status: str = PASSED
    message: str = ""
    duration: float = 0.0
    troubleshooting: str | None = None
    # What the test measured (``record_measurement``), by name: {"value", "unit", ...}.
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def troubleshooting_note(doc: str | None) -> str | None:
    """The text after ``Troubleshooting:`` in a suite test's docstring."""
    if not doc or "Troubleshooting:" not in doc:
        return None
    note = doc.split("Troubleshooting:", 1)[1]
    return " ".join(note.split()) or None


def measurement_summary(measurements: dict[str, dict[str, Any]]) -> str:
    """``"name=value unit, ..."``, for the message of a passing test."""
    parts = []
    for name, m in measurements.items():
        value = m.get("value")
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{name}={shown}" + (f" {m['unit']}" if m.get("unit") else ""))
    return ", ".join(parts)


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        # A skip: (path, line, "Skipped: reason").
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr or "")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class Recorder:
    """Folds the setup / call / teardown reports of each test into one :class:`TestRecord`.

    Only tests that ran (or were skipped) get a record: a deselected test leaves its clauses
    UNTESTED rather than passed."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}
        self._collected: dict[str, tuple[list[str], str | None]] = {}

    def expect(self, nodeid: str, clauses: list[str], troubleshooting: str | None) -> None:
        """Note a collected test's clauses (from its markers) before it runs."""
        self._collected[nodeid] = (clauses, troubleshooting)

    def add(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            clauses, note = self._collected.get(report.nodeid, ([], None))
            record = self.records[report.nodeid] = TestRecord(
                report.nodeid, list(clauses), troubleshooting=note
            )
        record.duration += report.duration
        for key, value in report.user_properties:
            if key == MEASUREMENT and isinstance(value, dict) and "name" in value:
                record.measurements[str(value["name"])] = {
                    k: v for k, v in value.items() if k != "name"
                }
        if record.status in (FAILED, ERROR):
            return  # the first failure explains the test; a teardown error after it adds noise
        wasxfail = getattr(report, "wasxfail", None)
        if report.when == "call" and wasxfail is not None:
            record.status = XFAIL if report.skipped else XPASS
            record.message = f"expected failure: {wasxfail}" if report.skipped else wasxfail
        elif report.failed:
            record.status = FAILED if report.when == "call" else ERROR
            prefix = "" if report.when == "call" else f"error in {report.when}: "
            record.message = prefix + _message(report)
        elif report.skipped:
            record.status = SKIPPED
            record.message = _message(report)
        elif report.when == "call" and record.measurements and not record.message:
            # A passing test has no message of its own: its measurements are the news.
            record.message = measurement_summary(record.measurements)
