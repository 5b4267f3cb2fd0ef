"""The pytest plugin, driven through real pytest runs in a subprocess: markers, capability
skips, target errors, and staying inert for tests that do not use it."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

FAKE_TARGETS = Path(__file__).with_name("fake_targets.py")


def run_pytest(
    tmp_path: Path, test_source: str, *args: str, env: dict | None = None, autoload: bool = False
):
    """pytest on ``test_source`` in a subprocess. Without ``autoload`` only this plugin is
    loaded (by its entry-point name, as ``sessionspec run`` does): other plugins cost seconds
    of start-up."""
    shutil.copy(FAKE_TARGETS, tmp_path / "fake_targets.py")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(test_source))
    environment = {k: v for k, v in os.environ.items() if k != "SESSIONSPEC_TARGET"}
    environment.update(env or {})
    plugin: list[str] = []
    if not autoload:
        environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugin = ["-p", "sessionspec"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-rs",
         "--basetemp", str(tmp_path / "basetemp"), "test_sample.py", *args],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )


def test_unknown_clause_id_is_a_usage_error(tmp_path):
    result = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.clause("NO-SUCH-CLAUSE")
        def test_x():
            pass
    """, "--target", "fake_targets:BARE")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "NO-SUCH-CLAUSE" in result.stderr
    assert "test_sample.py::test_x" in result.stderr


def test_missing_capability_skips_with_its_name(tmp_path):
    result = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.clause("MODEL-MISMATCH-VALUEERROR")
        def test_needs_custom():
            pass

        @pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
        @pytest.mark.requires("keyword-search", "load-index")
        def test_needs_two():
            pass

        @pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
        def test_needs_nothing():
            pass
    """, "--target", "fake_targets:BARE")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "target 'bare' lacks capability: custom-embeddings" in result.stdout
    assert "target 'bare' lacks capabilities: keyword-search, load-index" in result.stdout
    assert "1 passed, 2 skipped" in result.stdout


def test_unavailable_target_skips_everything(tmp_path):
    result = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
        def test_a():
            pass

        def test_uses_target(target):
            pass
    """, "--target", "fake_targets:GONE")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("sdk X is not installed") == 2, result.stdout


def test_bad_target_is_a_usage_error_naming_it(tmp_path):
    result = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
        def test_x():
            pass
    """, "--target", "no_such_sdk:TARGET")
    assert result.returncode == 4
    assert "'no_such_sdk:TARGET'" in result.stderr


def test_inert_for_tests_that_do_not_use_it(tmp_path):
    # A broken target spec in the environment proves the target is never loaded, and the
    # absence of a mock-cloud directory that no cloud was started.
    result = run_pytest(tmp_path, """
        def test_plain(tmp_path):
            assert True
    """, env={"SESSIONSPEC_TARGET": "no_such_sdk:TARGET"}, autoload=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list((tmp_path / "basetemp").glob("mock-cloud*"))


def test_report_dir_records_results(tmp_path):
    result = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
        def test_pass():
            '''Checks nothing.

            Troubleshooting: never fails.
            '''

        @pytest.mark.clause("CREATE-STARTS-EMPTY", "RESUME-AUTOLOADS")
        def test_fail():
            '''Troubleshooting: it always fails.'''
            assert 1 == 2, "one is not two"

        @pytest.mark.clause("MODEL-MISMATCH-VALUEERROR")
        def test_skipped():
            pass

        def test_loose():
            pass
    """, "--target", "fake_targets:BARE", "--sessionspec-report-dir", "out",
        "--control-key", "secret-key")
    assert result.returncode == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    by_id = {c["id"]: c for c in report["clauses"]}
    assert by_id["CREDENTIALS-CHECKED-AT-OPEN"]["status"] == "PASS"
    assert by_id["CREATE-STARTS-EMPTY"]["status"] == "FAIL"
    assert by_id["RESUME-AUTOLOADS"]["status"] == "FAIL"
    failed = by_id["CREATE-STARTS-EMPTY"]["tests"][0]
    assert "one is not two" in failed["message"]
    assert failed["troubleshooting"] == "it always fails."
    assert by_id["MODEL-MISMATCH-VALUEERROR"]["status"] == "SKIP"
    assert "custom-embeddings" in by_id["MODEL-MISMATCH-VALUEERROR"]["reason"]
    assert by_id["PUSH-CREATES"]["status"] == "UNTESTED"
    assert report["exit_status"] == 1
    assert report["run"]["target"]["name"] == "bare"
    assert "secret-key" not in json.dumps(report)
    assert [t["nodeid"] for t in report["unassigned_tests"]] == ["test_sample.py::test_loose"]
