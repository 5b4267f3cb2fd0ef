"""The clause registry loads, rejects malformed entries, and the suite names only its clauses."""

import ast
from pathlib import Path

import pytest

import conformance.suite
from conformance.clauses import CLAUSES, STRENGTHS, RegistryError, load_registry
from conformance.targets import ALL_CAPABILITIES

SUITE_DIR = Path(conformance.suite.__file__).parent


def test_registry_loads():
    assert len(CLAUSES) >= 30
    for clause in CLAUSES.values():
        assert clause.strength in STRENGTHS
        assert clause.requires <= ALL_CAPABILITIES
        assert clause.quote and clause.section
    assert CLAUSES["RESUME-NO-REEMBED"].is_must
    assert CLAUSES["MODEL-MISMATCH-VALUEERROR"].requires == {"custom-embeddings"}


ENTRY = '[[clause]]\nid = "{id}"\nsection = "S"\nquote = "q"\nstrength = "{strength}"\n{extra}\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ENTRY.format(id="A", strength="MUST", extra="") * 2, "duplicate id 'A'"),
        (ENTRY.format(id="A", strength="MAY", extra=""), "strength must be one of"),
        (ENTRY.format(id="A", strength="MUST", extra='requires = ["teleport"]'), "teleport"),
        (ENTRY.format(id="A", strength="MUST", extra='colour = "red"'), "unknown keys"),
        ('[[clause]]\nid = "A"\nstrength = "MUST"\n', "'section' must be"),
    ],
)
def test_registry_rejects(text, problem):
    with pytest.raises(RegistryError, match=problem):
        load_registry(text)


def _suite_tests() -> list[tuple[Path, ast.FunctionDef]]:
    tests = []
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        tests += [
            (path, node)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
    return tests


def _marker_calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every ``...mark.<name>(...)`` or bare ``<name>(...)`` call in ``tree``."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                calls.append(node)
    return calls


def test_suite_has_tests():
    assert len(_suite_tests()) >= 13


def test_every_clause_marker_names_a_known_clause():
    seen: set[str] = set()
    for path in SUITE_DIR.glob("*.py"):
        for call in _marker_calls(ast.parse(path.read_text("utf-8")), "clause"):
            assert call.args, f"{path.name}:{call.lineno}: clause() without an id"
            for arg in call.args:
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{path.name}:{call.lineno}: clause ids must be string literals"
                )
                assert arg.value in CLAUSES, f"{path.name}:{call.lineno}: unknown {arg.value!r}"
                seen.add(arg.value)
    assert seen, "no clause markers found in the suite"


def test_every_suite_test_has_a_clause_and_troubleshooting_note():
    for path, func in _suite_tests():
        where = f"{path.name}::{func.name}"
        markers = [
            d for d in func.decorator_list if isinstance(d, ast.Call) and _marker_calls(d, "clause")
        ]
        assert markers, f"{where}: no @pytest.mark.clause(...)"
        doc = ast.get_docstring(func) or ""
        assert "Troubleshooting:" in doc, f"{where}: docstring has no 'Troubleshooting:' line"
