"""``--clause ID``: run only the tests of some clauses, in the plugin and in ``sessionspec run``."""

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from conformance.clauses import CLAUSES
from conformance.plugin import clause_selection
from conformance.runner import RunOptions, pytest_arguments, run
from mock_cloud.server import running_server
from mock_cloud.settings import Settings

FAKE_TARGETS = Path(__file__).with_name("fake_targets.py")

SAMPLE_TESTS = """
    import pytest

    @pytest.mark.clause("CREATE-STARTS-EMPTY")
    def test_empty():
        pass

    @pytest.mark.clause("CREATE-STARTS-EMPTY", "RESUME-AUTOLOADS")
    def test_empty_and_resume():
        pass

    @pytest.mark.clause("RESUME-AUTOLOADS")
    def test_resume():
        pass

    @pytest.mark.clause("PUSH-CREATES")
    def test_push():
        assert False, "push is broken"

    def test_loose():
        pass
"""


def run_pytest(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """pytest with only this plugin on ``SAMPLE_TESTS``; returns the result and the report
    directory."""
    shutil.copy(FAKE_TARGETS, tmp_path / "fake_targets.py")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSPEC_TARGET"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # other plugins cost seconds of start-up
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "sessionspec",
            "-p",
            "no:cacheprovider",
            "--target",
            "fake_targets:BARE",
            "--sessionspec-report-dir",
            "out",
            "test_sample.py",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, tmp_path / "out" / "report.json"


def test_clause_selection_parses_repeats_and_commas():
    given = ["PUSH-CREATES", " RESUME-AUTOLOADS , PUSH-CREATES", ""]
    assert clause_selection(given) == ["PUSH-CREATES", "RESUME-AUTOLOADS"]
    assert clause_selection([]) == []


def test_clause_selection_rejects_unknown_ids_with_a_hint():
    with pytest.raises(pytest.UsageError) as caught:
        clause_selection(["PUSH-CREATES", "push-replace", "NOTHING-LIKE-IT"])
    message = str(caught.value)
    assert "'push-replace' (did you mean PUSH-REPLACES" in message
    assert "'NOTHING-LIKE-IT'" in message
    assert "'PUSH-CREATES'" not in message  # known: not reported


def test_plugin_runs_only_the_selected_clauses(tmp_path):
    result, report_path = run_pytest(tmp_path, "--clause", "CREATE-STARTS-EMPTY")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 3 deselected" in result.stdout
    report = json.loads(report_path.read_text())
    # RESUME-AUTOLOADS is left out although a selected test also checks it: one of its two
    # tests is no verdict on it.
    assert [c["id"] for c in report["clauses"]] == ["CREATE-STARTS-EMPTY"]
    assert report["clauses"][0]["status"] == "PASS"
    assert len(report["clauses"][0]["tests"]) == 2
    assert report["run"]["selected_clauses"] == ["CREATE-STARTS-EMPTY"]
    assert report["summary"]["UNTESTED"] == 0
    assert report["exit_status"] == 0


def test_plugin_clause_options_add_up(tmp_path):
    result, report_path = run_pytest(
        tmp_path, "--clause", "PUSH-CREATES", "--clause", "RESUME-AUTOLOADS,CREATE-STARTS-EMPTY"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 3 passed, 1 deselected" in result.stdout
    report = json.loads(report_path.read_text())
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    # In registry order, whatever the order asked.
    assert statuses == {
        "CREATE-STARTS-EMPTY": "PASS",
        "RESUME-AUTOLOADS": "PASS",
        "PUSH-CREATES": "FAIL",
    }
    assert report["summary"]["failed_must"] == ["PUSH-CREATES"]


def test_plugin_rejects_an_unknown_clause(tmp_path):
    result, report_path = run_pytest(tmp_path, "--clause", "PUSH-REPLACE")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown clause id 'PUSH-REPLACE' (did you mean PUSH-REPLACES" in result.stderr
    assert not report_path.exists()


def test_plugin_without_clause_reports_every_clause(tmp_path):
    result, report_path = run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deselected" not in result.stdout
    report = json.loads(report_path.read_text())
    assert [c["id"] for c in report["clauses"]] == list(CLAUSES)
    assert "selected_clauses" not in report["run"]


def test_runner_passes_clauses_to_pytest(tmp_path):
    options = RunOptions(clauses=["PUSH-CREATES", "RESUME-AUTOLOADS,MODEL-CHOICES"])
    args = pytest_arguments(options, tmp_path / "pytest.ini")
    assert args[args.index("--clause") :][:4] == [
        "--clause",
        "PUSH-CREATES",
        "--clause",
        "RESUME-AUTOLOADS,MODEL-CHOICES",
    ]
    assert "--clause" not in pytest_arguments(RunOptions(), tmp_path / "pytest.ini")


def test_runner_passes_a_control_key_that_looks_like_an_option(tmp_path):
    # secrets.token_urlsafe keys start with "-" one time in 64: pytest must still see it as
    # the value of --control-key.
    with running_server(Settings(tmp_path / "cloud", {}, control_key="-ck")) as server:
        code = run(
            RunOptions(target="reference", keyword="test_push_creates", cloud_url=server.base_url,
                       control_key="-ck", report_dir=tmp_path / "out"),
            Console(file=io.StringIO(), width=200),
        )
    assert code == pytest.ExitCode.OK


def test_runner_rejects_an_unknown_clause_before_running(tmp_path):
    out = io.StringIO()
    code = run(
        RunOptions(clauses=["RESUME-NO-REMBED"], report_dir=tmp_path / "out"),
        Console(file=out, width=200),
    )
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "did you mean RESUME-NO-REEMBED" in out.getvalue()
    assert not (tmp_path / "out").exists()


def test_runner_says_when_no_test_checks_the_clause(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSPEC_TARGET"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "run",
            "--report-dir",
            "out",
            "--clause",
            "PUSH-CREATES",
            "-k",
            "no_test_has_this_name",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout + result.stderr
    assert "no suite test checks PUSH-CREATES and matches -k" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {c["id"]: c["status"] for c in report["clauses"]} == {"PUSH-CREATES": "UNTESTED"}
