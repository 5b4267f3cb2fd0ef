"""``load_target``: built-in names, ``module:attr``, the environment, entry points, errors."""

import os
import sys
import types
from importlib import metadata

import pytest

from conformance.targets import (
    ALL_CAPABILITIES,
    BUILTIN_MODELS,
    ENV_VAR,
    SdkTarget,
    TargetError,
    UnavailableTarget,
    load_target,
    loading,
    target_versions,
)
from conformance.targets.moss_sdk import NOT_INSTALLED, moss_target


class FakeTarget:
    name = "fake"
    capabilities = frozenset({"custom-embeddings"})

    def client(self, *, project_id, project_key, auth_url, index_url):
        return (project_id, project_key, auth_url, index_url)

    def document(self, id, text, metadata=None, embedding=None):
        return (id, text, metadata, embedding)

    def query_options(self, *, embedding=None, top_k=None, alpha=None, filter=None):
        return {"embedding": embedding, "top_k": top_k}

    def get_documents_options(self, *, doc_ids=None):
        return doc_ids

    def versions(self):
        return {"fake": "1.0"}


class NotATarget:
    name = "half"


@pytest.fixture
def fake_module(monkeypatch):
    module = types.ModuleType("fake_sdk_target")
    module.TARGET = FakeTarget()
    module.TargetClass = FakeTarget
    module.make = lambda: FakeTarget()
    module.broken = NotATarget()
    module.nested = types.SimpleNamespace(TARGET=FakeTarget())
    monkeypatch.setitem(sys.modules, "fake_sdk_target", module)
    return module


def test_builtin_reference():
    target = load_target("reference")
    assert target.name == "reference"
    assert target.capabilities == ALL_CAPABILITIES
    assert "sessionspec" in target_versions(target)


def test_builtin_moss():
    pytest.importorskip("moss")
    target = load_target("moss")
    assert target.name == "moss"
    assert target.capabilities == ALL_CAPABILITIES - {BUILTIN_MODELS}
    assert target_versions(target)["moss"].startswith("1.")


def test_moss_missing_gives_unavailable_target(monkeypatch):
    monkeypatch.setitem(sys.modules, "moss", None)  # `import moss` now fails
    target = moss_target()
    assert isinstance(target, UnavailableTarget)
    assert target.unavailable_reason == NOT_INSTALLED
    assert load_target("moss").unavailable_reason == NOT_INSTALLED


@pytest.mark.parametrize("attr", ["TARGET", "TargetClass", "make", "nested.TARGET"])
def test_module_attr(fake_module, attr):
    target = load_target(f"fake_sdk_target:{attr}")
    assert target.name == "fake"
    assert target_versions(target) == {"fake": "1.0"}


def test_environment_variable(fake_module, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "fake_sdk_target:TARGET")
    assert load_target().name == "fake"
    assert load_target(None).name == "fake"
    monkeypatch.delenv(ENV_VAR)
    assert load_target().name == "reference"


def test_entry_point(fake_module, monkeypatch):
    entry = metadata.EntryPoint("fakesdk", "fake_sdk_target:TARGET", loading.ENTRY_POINT_GROUP)

    def entry_points(*, group):
        return [entry] if group == loading.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(loading.metadata, "entry_points", entry_points)
    assert load_target("fakesdk").name == "fake"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nosuchtarget", "no entry point of that name"),
        ("no_such_module_xyz:TARGET", "cannot import 'no_such_module_xyz'"),
        ("fake_sdk_target:MISSING", "has no attribute 'MISSING'"),
        ("fake_sdk_target:broken", "does not satisfy the Target protocol"),
        ("fake_sdk_target:", "expected 'package.module:ATTR'"),
    ],
)
def test_bad_spec_names_it(fake_module, spec, problem):
    with pytest.raises(TargetError, match=problem) as caught:
        load_target(spec)
    assert repr(spec) in str(caught.value)


def test_protocol_problems_are_listed(fake_module):
    with pytest.raises(TargetError) as caught:
        load_target("fake_sdk_target:broken")
    message = str(caught.value)
    assert "'capabilities'" in message
    assert "client()" in message and "query_options()" in message


def test_unknown_capability_rejected(fake_module):
    fake_module.odd = FakeTarget()
    fake_module.odd.capabilities = frozenset({"telepathy"})
    with pytest.raises(TargetError, match="telepathy"):
        load_target("fake_sdk_target:odd")


def test_sdk_target_omits_unset_options():
    seen = {}

    def options(**kw):
        seen.update(kw)
        return kw

    target = SdkTarget("t", frozenset(), dict, lambda *a, **k: (a, k), options, options)
    target.query_options(embedding=(1.0, 2.0), top_k=None, alpha=0.5)
    assert seen == {"embedding": [1.0, 2.0], "alpha": 0.5}
    assert target.get_documents_options() == {}
    assert target.document("a", "t") == (("a", "t"), {})


def test_moss_target_restores_environment(monkeypatch, tmp_path):
    pytest.importorskip("moss")
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    monkeypatch.delenv("MOSS_AUTH_URL", raising=False)
    target = moss_target()
    target.client(
        project_id="p", project_key="k",
        auth_url="http://127.0.0.1:9/auth/token", index_url="http://127.0.0.1:9/index",
    )
    assert os.environ["MOSS_AUTH_URL"] == "http://127.0.0.1:9/auth/token"
    assert os.environ["HOME"] != str(tmp_path / "real-home")
    target.close()
    assert os.environ["HOME"] == str(tmp_path / "real-home")
    assert "MOSS_AUTH_URL" not in os.environ
    assert not (tmp_path / "real-home").exists()
