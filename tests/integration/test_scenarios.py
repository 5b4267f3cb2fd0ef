"""The documented workflows, run as separate programs against a real mock cloud."""

import os
import subprocess
import sys

from tests.integration.conftest import Project


def run(project: Project, scenario: str, *args: str) -> str:
    env = {**os.environ, **project.env()}
    done = subprocess.run(
        [sys.executable, "-m", f"scenarios.{scenario}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_create_then_resume(project: Project) -> None:
    first = run(project, "create_or_resume", "--index", "notes")
    assert "started empty: 0 docs, model moss-minilm" in first
    assert "push_index: 3 docs" in first
    second = run(project, "create_or_resume", "--index", "notes")
    assert "resumed: 3 docs" in second
    assert "0 added, 3 updated" in second


def test_extend_across_two_processes(project: Project) -> None:
    assert "resumed 0 docs, appended 3, cloud now holds 3" in run(
        project, "extend_across_runs", "--index", "log", "--run", "1"
    )
    assert "resumed 3 docs, appended 3, cloud now holds 6" in run(
        project, "extend_across_runs", "--index", "log", "--run", "2"
    )
    assert sorted(project.state()["indexes"]["log"]["doc_ids"]) == [
        f"run{r}-note{i}" for r in (1, 2) for i in range(3)
    ]


def test_live_call_queries_the_faq_and_the_session_each_turn(project: Project) -> None:
    out = run(project, "live_call_context")
    assert "published the FAQ index 'faq'" in out
    assert out.count("  FAQ     -> ") == 3 and out.count("  session -> ") == 3
    assert "FAQ     -> faq-refund" in out  # "money back for the duplicate charge"


def test_custom_embeddings(project: Project) -> None:
    out = run(project, "custom_embeddings")
    assert "query with a vector: north=" in out
    assert "query without QueryOptions.embedding -> ValueError" in out
    assert "document without .embedding -> ValueError" in out
    assert project.state()["indexes"]["custom-vectors"]["doc_ids"] == ["north", "east", "up"]


def test_model_mismatch(project: Project) -> None:
    out = run(project, "model_mismatch")
    assert "adopts 'custom'" in out
    assert "session(model_id='moss-minilm') -> ValueError" in out


def test_bad_credentials(project: Project) -> None:
    out = run(project, "bad_credentials")
    assert "AuthenticationError" in out
