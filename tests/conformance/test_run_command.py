"""``sessionspec run`` end to end: the real suite against real targets and a real mock cloud."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Clauses the first suite tests cover: all must PASS on the reference.
COVERED = [
    "SESSION-RETURNS-INDEX", "CREATE-STARTS-EMPTY", "RESUME-AUTOLOADS",
    "CREDENTIALS-CHECKED-AT-OPEN", "MODEL-MISMATCH-VALUEERROR", "MODEL-ADOPTED-ON-RESUME",
    "CUSTOM-DOC-NEEDS-EMBEDDING", "CUSTOM-QUERY-NEEDS-EMBEDDING", "PUSH-CREATES",
    "PUSH-REPLACES", "PUSH-NO-SERVER-REEMBED", "MUTATIONS-IN-MEMORY", "RESUME-NO-REEMBED",
]

# The reference with one rule broken: vectors are doubled on the way in, as an SDK that
# rescales embeddings would. Cosine ranking cannot tell; the stored checksums can.
SCALED_TARGET = '''
from conformance.targets.reference import reference_target

_base = reference_target()


class Scaled:
    name = "scaled-reference"
    capabilities = _base.capabilities
    threaded_cloud_ok = True

    def client(self, **kw):
        return _base.client(**kw)

    def document(self, id, text, metadata=None, embedding=None):
        doubled = None if embedding is None else [2 * x for x in embedding]
        return _base.document(id, text, metadata, doubled)

    def query_options(self, **kw):
        return _base.query_options(**kw)

    def get_documents_options(self, **kw):
        return _base.get_documents_options(**kw)


TARGET = Scaled()
'''


def sessionspec_run(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--report-dir", "out", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )
    path = cwd / "out" / "report.json"
    assert path.exists(), result.stdout + result.stderr
    return result, json.loads(path.read_text())


def test_run_against_reference(tmp_path):
    result, report = sessionspec_run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    assert {cid: statuses[cid] for cid in COVERED} == dict.fromkeys(COVERED, "PASS")
    assert report["run"]["target"]["name"] == "reference"
    assert "sessionspec" in report["run"]["target"]["versions"]
    assert (tmp_path / "out" / "report.md").exists()
    assert "clause" in (tmp_path / "out" / "junit.xml").read_text()
    assert "reference" in result.stdout and "PASS" in result.stdout


def test_run_fails_a_broken_target_on_the_right_clause(tmp_path):
    (tmp_path / "scaled_target.py").write_text(SCALED_TARGET)
    result, report = sessionspec_run(
        tmp_path, "--target", "scaled_target:TARGET", "-k", "test_push"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    assert statuses["PUSH-NO-SERVER-REEMBED"] == "FAIL"
    assert statuses["PUSH-CREATES"] == "PASS"
    assert statuses["RESUME-AUTOLOADS"] == "UNTESTED"  # deselected by -k
    assert "PUSH-NO-SERVER-REEMBED" in report["summary"]["failed_must"]


@pytest.mark.interop
def test_run_against_published_sdk(tmp_path):
    pytest.importorskip("moss")
    result, report = sessionspec_run(tmp_path, "--target", "moss")
    assert result.returncode == 0, result.stdout + result.stderr
    by_id = {c["id"]: c for c in report["clauses"]}
    assert by_id["RESUME-NO-REEMBED"]["status"] == "PASS"
    assert by_id["ADD-EMBEDS-LOCALLY"]["status"] in ("SKIP", "UNTESTED")
    assert report["run"]["target"]["versions"]["moss"].startswith("1.21")
