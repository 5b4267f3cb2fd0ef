"""The SQLite store on its own: a real file in tmp_path, no HTTP."""

import threading
from pathlib import Path
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mock_cloud.store as store_module
from mock_cloud.store import NotFound, Store, vector_checksum
from protocol.documents import StoredDocument


def docs_and_vectors(n: int, dim: int = 4, seed: int = 0, text: str = "text",
                     ) -> tuple[list[StoredDocument], np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [StoredDocument(f"d{i}", f"{text} {i}", {"k": str(i), "n": i}, {"p": [i]})
            for i in range(n)]
    return docs, rng.standard_normal((n, dim)).astype(np.float32)


# Every test runs on both forms a pushed index is stored in: packed, and a row per document.
@pytest.fixture(params=["packed", "rows"])
def store(tmp_path: Path, request: pytest.FixtureRequest,
          monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "rows":
        monkeypatch.setattr(store_module, "PACKED_MAX_BYTES", 0)
    else:  # vectors in many parts, cut inside rows
        monkeypatch.setattr(store_module, "_PART_BYTES", 20)
    opened = Store(tmp_path)
    opened.upsert_project("alpha", "ka")
    opened.upsert_project("beta", "kb")
    yield opened
    opened.close()


def test_vectors_come_back_bit_for_bit(store: Store) -> None:
    awkward = np.array([[0.1, -0.0, 1e-45, 3.4028235e38], [np.float32(1) / 3, -1e-38, 7.0, 2.5]],
                       dtype=np.float32)
    docs = [StoredDocument("a", "x"), StoredDocument("b", "y", {"k": True}, "payload")]
    store.replace_index("alpha", "idx", None, docs, awkward)
    ids, matrix = store.load_vectors("alpha", "idx")
    assert ids == ["a", "b"]
    assert matrix.dtype == np.float32
    assert matrix.tobytes() == awkward.tobytes()
    assert store.get_docs("alpha", "idx") == docs
    snapshot = store.snapshot("alpha", "idx")
    assert snapshot.vectors.tobytes() == awkward.tobytes()
    state = store.state()["projects"]["alpha"]["indexes"]["idx"]
    assert state["checksums"]["a"] == vector_checksum(awkward[0].astype("<f4").tobytes())


def test_replace_creates_then_replaces_whole_index(store: Store) -> None:
    docs, vectors = docs_and_vectors(5)
    first = store.replace_index("alpha", "idx", None, docs, vectors)
    assert (first.model_id, first.dimension, first.doc_count, first.version) == ("custom", 4, 5, 1)
    new_docs, new_vectors = docs_and_vectors(2, dim=3, seed=1, text="new")
    second = store.replace_index("alpha", "idx", "moss-minilm", new_docs, new_vectors)
    assert (second.model_id, second.dimension, second.doc_count) == ("moss-minilm", 3, 2)
    assert second.version == 2 and second.created_at == first.created_at
    assert [d.text for d in store.get_docs("alpha", "idx")] == ["new 0", "new 1"]


def test_a_push_that_fails_half_way_changes_nothing(store: Store) -> None:
    docs, vectors = docs_and_vectors(5)
    before = store.replace_index("alpha", "idx", None, docs, vectors)
    state = store.state()
    # Rows are written one by one: the fourth cannot be serialised, after three were inserted.
    bad = [*docs[:3], StoredDocument("x", "t", None, object()), docs[4]]
    with pytest.raises(TypeError):
        store.replace_index("alpha", "idx", None, bad, vectors)
    assert store.state() == state
    assert store.get_index_info("alpha", "idx") == before


@pytest.mark.parametrize("mutate, message", [
    (lambda d, v: (d, np.vstack([v[:-1], [[np.nan] * 4]])), "finite"),
    (lambda d, v: ([*d[:-1], StoredDocument("d0", "dup")], v), r"docs\[4\]\.id: duplicate"),
    (lambda d, v: ([*d[:-1], StoredDocument("", "blank")], v), r"docs\[4\]\.id: must be"),
    (lambda d, v: ([StoredDocument(7, "int"), *d[1:]], v), r"docs\[0\]\.id: must be"),
    (lambda d, v: (d, v[:-1]), "embeddings"),
    (lambda d, v: ([], v[:0]), "at least one"),
    (lambda d, v: ([*d[:-1], StoredDocument("z", "t", {"f": float("inf")})], v), "finite"),
])
def test_invalid_replacements_are_refused_and_change_nothing(store, mutate, message) -> None:
    docs, vectors = docs_and_vectors(5)
    store.replace_index("alpha", "idx", None, docs, vectors)
    state = store.state()
    bad_docs, bad_vectors = mutate(docs, vectors)
    with pytest.raises(ValueError, match=message):
        store.replace_index("alpha", "idx", None, bad_docs, bad_vectors)
    assert store.state() == state


def test_updated_at_moves_on_every_change_even_in_quick_succession(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    stamps = [store.replace_index("alpha", "idx", None, docs, vectors).updated_at]
    for _ in range(5):
        stamps.append(store.replace_index("alpha", "idx", None, docs, vectors).updated_at)
    stamps.append(store.add_docs("alpha", "idx", [StoredDocument("n", "t")], [[1, 2, 3, 4]])[0]
                  .updated_at)
    stamps.append(store.delete_docs("alpha", "idx", ["n"])[0].updated_at)
    stamps.append(store.overwrite_vector("alpha", "idx", "d0", [0, 0, 0, 1]).updated_at)
    assert len(set(stamps)) == len(stamps)
    assert stamps == sorted(stamps)
    assert store.get_index_info("alpha", "idx").version == 9


def test_no_op_changes_keep_updated_at(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    record = store.replace_index("alpha", "idx", None, docs, vectors)
    assert store.delete_docs("alpha", "idx", ["unknown"]) == (record, 0)
    after, added, updated = store.add_docs("alpha", "idx", [StoredDocument("d0", "t")],
                                           [[1, 1, 1, 1]], upsert=False)
    assert (after, added, updated) == (record, 0, 0)


def test_projects_are_isolated(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    store.replace_index("alpha", "shared", None, docs, vectors)
    other_docs, other_vectors = docs_and_vectors(1, seed=9, text="beta")
    store.replace_index("beta", "shared", None, other_docs, other_vectors)
    assert [d.text for d in store.get_docs("beta", "shared")] == ["beta 0"]
    assert store.get_index_info("alpha", "shared").doc_count == 3
    assert store.delete_index("beta", "shared")
    assert store.get_index_info("alpha", "shared") is not None
    assert [r.name for r in store.list_indexes("beta")] == []
    with pytest.raises(NotFound):
        store.get_docs("beta", "shared")
    with pytest.raises(NotFound):
        store.replace_index("gamma", "x", None, docs, vectors)


def test_add_docs_appends_and_upserts_keeping_vectors(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    store.replace_index("alpha", "idx", None, docs, vectors)
    new = [StoredDocument("d1", "changed"), StoredDocument("d9", "added")]
    record, added, updated = store.add_docs("alpha", "idx", new, [[9, 9, 9, 9], [8, 8, 8, 8]])
    assert (added, updated, record.doc_count) == (1, 1, 4)
    ids, matrix = store.load_vectors("alpha", "idx")
    assert ids == ["d0", "d1", "d2", "d9"]
    assert matrix[0].tobytes() == vectors[0].tobytes()
    assert matrix[1].tolist() == [9, 9, 9, 9]
    assert store.get_docs("alpha", "idx", ["d1"])[0].text == "changed"
    # upsert=False leaves stored documents alone and still adds new ones
    _, added, updated = store.add_docs("alpha", "idx", [StoredDocument("d0", "no"),
                                                        StoredDocument("e", "yes")],
                                       [[1, 1, 1, 1], [2, 2, 2, 2]], upsert=False)
    assert (added, updated) == (1, 0)
    assert store.get_docs("alpha", "idx", ["d0"])[0].text == "text 0"


def test_add_docs_needs_embeddings_of_the_index_dimension(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    store.replace_index("alpha", "idx", None, docs, vectors)
    state = store.state()
    with pytest.raises(ValueError, match=r"docs\[1\].embedding: required"):
        store.add_docs("alpha", "idx", [StoredDocument("a", "t"), StoredDocument("b", "t")],
                       [[1, 2, 3, 4], None])
    with pytest.raises(ValueError, match="expected dimension 4"):
        store.add_docs("alpha", "idx", [StoredDocument("a", "t")], [[1, 2]])
    with pytest.raises(ValueError, match="finite"):
        store.add_docs("alpha", "idx", [StoredDocument("a", "t")], [[1, 2, 3, float("nan")]])
    with pytest.raises(NotFound):
        store.add_docs("alpha", "nope", [StoredDocument("a", "t")], [[1, 2, 3, 4]])
    assert store.state() == state


def test_delete_docs_ignores_unknown_ids(store: Store) -> None:
    docs, vectors = docs_and_vectors(4)
    store.replace_index("alpha", "idx", None, docs, vectors)
    record, removed = store.delete_docs("alpha", "idx", ["d1", "zz", "d1", "d3"])
    assert removed == 2 and record.doc_count == 2
    assert [d.id for d in store.get_docs("alpha", "idx")] == ["d0", "d2"]


def test_overwrite_vector_changes_only_that_checksum(store: Store) -> None:
    docs, vectors = docs_and_vectors(3)
    store.replace_index("alpha", "idx", None, docs, vectors)
    before = store.state()["projects"]["alpha"]["indexes"]["idx"]["checksums"]
    store.overwrite_vector("alpha", "idx", "d1", [1, 0, 0, 0])
    after = store.state()["projects"]["alpha"]["indexes"]["idx"]["checksums"]
    assert after["d0"] == before["d0"] and after["d2"] == before["d2"]
    assert after["d1"] == vector_checksum(np.array([1, 0, 0, 0], "<f4").tobytes())
    with pytest.raises(NotFound):
        store.overwrite_vector("alpha", "idx", "missing", [1, 0, 0, 0])
    with pytest.raises(ValueError, match="dimension"):
        store.overwrite_vector("alpha", "idx", "d0", [1, 0])


def test_readers_see_the_old_index_or_the_new_never_a_mix(store: Store) -> None:
    n = 400
    old_docs, vectors = docs_and_vectors(n, text="old")
    new_docs, _ = docs_and_vectors(n, text="new")
    store.replace_index("alpha", "idx", None, old_docs, vectors)
    seen: list[set[str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            snapshot = store.snapshot("alpha", "idx")
            seen.append({d.text.split()[0] for d in snapshot.docs})
            assert len(snapshot.docs) == snapshot.vectors.shape[0] == n

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(10):
            store.replace_index("alpha", "idx", None, new_docs if i % 2 else old_docs, vectors)
    finally:
        stop.set()
        reader.join()
    assert seen and all(len(kinds) == 1 for kinds in seen)


def test_data_and_clock_survive_reopening(tmp_path: Path) -> None:
    first = Store(tmp_path)
    first.upsert_project("alpha", "ka")
    docs, vectors = docs_and_vectors(3)
    record = first.replace_index("alpha", "idx", None, docs, vectors)
    first.close()
    second = Store(tmp_path)
    try:
        assert second.project_key("alpha") == "ka"
        assert second.get_index_info("alpha", "idx") == record
        assert second.load_vectors("alpha", "idx")[1].tobytes() == vectors.tobytes()
        later = second.replace_index("alpha", "idx", None, docs, vectors)
        assert later.stamp > record.stamp
    finally:
        second.close()


def test_reset_keeps_only_the_given_projects(store: Store) -> None:
    docs, vectors = docs_and_vectors(2)
    store.replace_index("alpha", "idx", None, docs, vectors)
    job = store.create_job("alpha", "idx", "push", "completed")
    store.reset({"alpha": "new-key"})
    assert store.projects() == {"alpha": "new-key"}
    assert store.list_indexes("alpha") == []
    assert store.get_job("alpha", job.id) is None
    assert store.state() == {"projects": {"alpha": {"indexes": {}}}}


def test_jobs_belong_to_their_project(store: Store) -> None:
    job = store.create_job("alpha", "idx", "create", "pending_upload", model_id="custom",
                           doc_count=2, dimension=4)
    assert job.progress == 0.0 and job.completed_at is None
    assert job.params == {"model_id": "custom", "doc_count": 2, "dimension": 4}
    assert store.get_job("beta", job.id) is None
    assert store.get_job(None, job.id) == job
    done = store.update_job("alpha", job.id, "completed")
    assert done.status == "completed" and done.progress == 1.0 and done.completed_at


def test_get_docs_by_ids_in_stored_order(store: Store) -> None:
    docs = [StoredDocument(doc_id, "t") for doc_id in ("b", 'q"uote', "a,comma", "z")]
    store.replace_index("alpha", "idx", None, docs, np.ones((4, 2), np.float32))
    found = store.get_docs("alpha", "idx", ["z", "a,comma", "missing", 'q"uote'])
    assert [d.id for d in found] == ['q"uote', "a,comma", "z"]
    assert store.get_docs("alpha", "idx", []) == []


def test_get_docs_finds_ids_holding_a_nul(store: Store) -> None:
    docs = [StoredDocument(doc_id, "t") for doc_id in ("\x00", "a\x00b", "a")]
    store.replace_index("alpha", "idx", None, docs, np.ones((3, 2), np.float32))
    found = store.get_docs("alpha", "idx", ["a", "a\x00b", "\x00", "a\x00"])
    assert [d.id for d in found] == ["\x00", "a\x00b", "a"]


def test_a_new_store_has_large_pages_and_an_older_file_still_opens(tmp_path: Path) -> None:
    import sqlite3

    fresh = Store(tmp_path / "new")
    assert fresh._conn().execute("PRAGMA page_size").fetchone()[0] == 65536
    fresh.close()

    # A data dir made with SQLite's default pages keeps them, and its data.
    older = tmp_path / "old"
    Store(older).close()
    (older / "index.sqlite3").unlink()
    with sqlite3.connect(older / "index.sqlite3") as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE early (x)")
    opened = Store(older)
    opened.upsert_project("alpha", "ka")
    docs, vectors = docs_and_vectors(50)
    opened.replace_index("alpha", "idx", None, docs, vectors)
    assert opened._conn().execute("PRAGMA page_size").fetchone()[0] == 4096
    opened.close()
    reopened = Store(older)
    assert reopened.load_vectors("alpha", "idx")[1].tobytes() == vectors.tobytes()
    reopened.close()


def packed_count(store: Store) -> int:
    """Packed indexes, each with its parts of vectors (and no part left of any other)."""
    conn = store._conn()
    count: int = conn.execute("SELECT COUNT(*) FROM packed").fetchone()[0]
    orphans = conn.execute("SELECT COUNT(*) FROM packed_vectors WHERE iid NOT IN"
                           " (SELECT iid FROM packed)").fetchone()[0]
    without = conn.execute("SELECT COUNT(*) FROM packed WHERE vectors = x'' AND iid NOT IN"
                           " (SELECT iid FROM packed_vectors)").fetchone()[0]
    assert (orphans, without) == (0, 0)
    return count


def everything(store: Store, name: str, ids: list[str]) -> tuple[object, ...]:
    snapshot = store.snapshot("alpha", name)
    vectors = store.load_vectors("alpha", name)
    by_id = store.get_docs("alpha", name, ids)
    return (store.get_docs("alpha", name), by_id, snapshot.docs, snapshot.vectors.tobytes(),
            vectors[0], vectors[1].tobytes(), store.state(), store.get_index_info("alpha", name),
            [[type(v) for v in (d.metadata or {}).values()] for d in snapshot.docs])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6)
stored_docs = st.lists(st.builds(
    StoredDocument, st.text(min_size=1), st.text(),
    st.none() | st.dictionaries(st.text(), st.text() | st.integers(-2**63, 2**63 - 1)
                                | st.booleans() | st.floats(allow_nan=False,
                                                            allow_infinity=False), max_size=3),
    json_values), min_size=1, max_size=8, unique_by=lambda d: d.id)


@settings(max_examples=60, deadline=None)
@given(stored_docs, st.integers(1, 5), st.data())
def test_a_packed_index_reads_as_it_does_once_unpacked(
    tmp_path_factory: pytest.TempPathFactory, docs: list[StoredDocument], dim: int,
    data: st.DataObject,
) -> None:
    store = Store(tmp_path_factory.mktemp("packed"))
    part_bytes = data.draw(st.sampled_from([4, 28, 1 << 20]))
    parts = mock.patch.object(store_module, "_PART_BYTES", part_bytes)
    try:
        parts.start()
        store.upsert_project("alpha", "ka")
        vectors = np.array(data.draw(st.lists(st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=dim,
            max_size=dim), min_size=len(docs), max_size=len(docs))), dtype=np.float32)
        store.replace_index("alpha", "idx", None, docs, vectors)
        assert packed_count(store) == 1
        ids = data.draw(st.lists(st.sampled_from([d.id for d in docs]) | st.text(), max_size=4))
        packed = everything(store, "idx", ids)
        # A change by document that changes nothing still unpacks the index.
        assert store.delete_docs("alpha", "idx", ["\x00 no such id"])[1] == 0
        assert packed_count(store) == 0
        assert everything(store, "idx", ids) == packed
        assert packed[3] == vectors.tobytes()
        # A decoded push is stored without checking it again, and the same.
        store.replace_index("alpha", "checked", None, docs, vectors, checked=True)
        assert everything(store, "checked", ids)[:6] == packed[:6]
        # As data dirs written before hold a packed index (documents packed by orjson, the
        # matrix in one BLOB), it reads the same.
        store.replace_index("alpha", "before", None, docs, vectors)
        with store._write() as conn:
            (iid,) = conn.execute("SELECT iid FROM indexes WHERE name = 'before'").fetchone()
            conn.execute("DELETE FROM packed_vectors WHERE iid = ?", (iid,))
            conn.execute("UPDATE packed SET docs = ?, vectors = ? WHERE iid = ?", (orjson.dumps(
                [(d.id, d.text, d.metadata, d.payload) for d in docs]), vectors.tobytes(), iid))
        assert everything(store, "before", ids)[:6] == packed[:6]
    finally:
        parts.stop()
        store.close()


def test_changes_by_document_unpack_a_pushed_index_in_their_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.upsert_project("alpha", "ka")
    docs, vectors = docs_and_vectors(6)
    store.replace_index("alpha", "idx", None, docs, vectors)
    store.replace_index("alpha", "other", None, docs, vectors)
    assert packed_count(store) == 2
    # A refused change leaves the index packed.
    with pytest.raises(ValueError):
        store.add_docs("alpha", "idx", [StoredDocument("new", "t")], [[1.0]])
    assert packed_count(store) == 2
    store.add_docs("alpha", "idx", [StoredDocument("new", "t"), docs[2]], [[1.0] * 4, [2.0] * 4])
    assert packed_count(store) == 1
    ids, matrix = store.load_vectors("alpha", "idx")
    assert ids == [d.id for d in docs] + ["new"]
    assert matrix[2].tolist() == [2.0] * 4 and matrix[6].tolist() == [1.0] * 4
    store.overwrite_vector("alpha", "other", "d1", [0.5] * 4)
    assert packed_count(store) == 0
    assert store.load_vectors("alpha", "other")[1][1].tolist() == [0.5] * 4
    # A push packs the index again; a reset and a deleted index leave nothing behind.
    store.replace_index("alpha", "idx", None, docs, vectors)
    assert store._conn().execute("SELECT COUNT(*) FROM documents WHERE iid = ?",
                                 (store.get_index_info("alpha", "idx").iid,)).fetchone()[0] == 0
    assert store.delete_index("alpha", "idx") and packed_count(store) == 0
    store.replace_index("alpha", "idx", None, docs, vectors)
    store.reset({"alpha": "ka"})
    assert packed_count(store) == 0
    store.close()
