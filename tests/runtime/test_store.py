"""The state store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.store import MIGRATIONS, Conflict, NotFound, Release, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "ouro.db")


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    Store(tmp_path / "ouro.db").close()
    db = sqlite3.connect(tmp_path / "ouro.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this code"):
        Store(tmp_path / "ouro.db")


def test_first_key_is_admin_and_names_are_unique(store: Store) -> None:
    assert store.add_key("alice", "SHA256:a", "ssh-ed25519 AAAA", admin=False).admin
    assert not store.add_key("bob", "SHA256:b", "ssh-ed25519 BBBB", admin=False).admin
    with pytest.raises(Conflict):
        store.add_key("bob", "SHA256:c", "ssh-ed25519 CCCC", admin=False)
    with pytest.raises(Conflict, match="as 'alice'"):
        store.add_key("carol", "SHA256:a", "ssh-ed25519 AAAA", admin=False)
    assert [k.name for k in store.all_keys()] == ["alice", "bob"]
    assert store.key_by_fingerprint("SHA256:b") == store.key("bob")


def test_access_rules(store: Store) -> None:
    alice = store.add_key("alice", "SHA256:a", "k", admin=False)
    bob = store.add_key("bob", "SHA256:b", "k", admin=False)
    carol = store.add_key("carol", "SHA256:c", "k", admin=False)
    store.create_app("bobs", "bob")
    assert store.can_access(alice, "bobs")  # admin
    assert store.can_access(bob, "bobs")
    assert not store.can_access(carol, "bobs")
    store.grant("bobs", "carol")
    assert store.can_access(carol, "bobs")
    with pytest.raises(Conflict):
        store.grant("bobs", "carol")
    with pytest.raises(Conflict, match="owns"):
        store.grant("bobs", "bob")
    store.revoke("bobs", "carol")
    assert not store.can_access(carol, "bobs")
    with pytest.raises(NotFound):
        store.revoke("bobs", "carol")


def test_config_changes_cut_releases(store: Store) -> None:
    store.create_app("app", "bob")
    first = store.change_config("app", {"A": "1", "B": "two words"}, (), "bob")
    assert (first.version, first.status, first.description) == (
        1,
        "succeeded",
        "Set A, B config vars",
    )
    with pytest.raises(NotFound):
        store.change_config("missing", {"A": "1"}, (), "bob")
    store.change_config("app", {}, ["A", "NOT_THERE"], "bob")
    assert store.config("app") == {"B": "two words"}


def _deploy(store: Store, app: str, slug: str) -> Release:
    release = store.cut_release(
        app,
        f"Deploy {slug}",
        "bob",
        commit="c" * 40,
        slug=slug,
        slug_size=1,
        process_types={"web": "serve"},
        buildpacks=["procfile"],
    )
    store.finish_release(app, release.version, succeeded=True)
    return store.release(app, release.version)


def test_a_running_app_gets_pending_releases_that_can_be_abandoned(store: Store) -> None:
    store.create_app("app", "bob")
    store.change_config("app", {"A": "old"}, (), "bob")
    running = _deploy(store, "app", "s1")
    change = store.change_config("app", {"A": "new"}, (), "bob")
    assert change.status == "pending" and change.slug == "s1" and change.config == {"A": "new"}
    assert store.current_release("app") == running
    store.abandon_release("app", change.version)
    assert store.config("app") == {"A": "old"}
    assert store.release("app", change.version).status == "failed"


def test_rollback_restores_slug_and_config(store: Store) -> None:
    store.create_app("app", "bob")
    store.change_config("app", {"A": "1"}, (), "bob")
    v2 = _deploy(store, "app", "s1")
    store.finish_release("app", store.change_config("app", {"A": "2"}, (), "bob").version, True)
    _deploy(store, "app", "s2")
    back = store.rollback("app", v2.version, "bob")
    assert (back.description, back.slug, back.config) == ("Rollback to v2", "s1", {"A": "1"})
    assert store.config("app") == {"A": "1"}
    assert back.status == "pending"  # until its processes are up
    store.finish_release("app", back.version, succeeded=True)
    failed = store.cut_release(
        "app",
        "Deploy x",
        "bob",
        commit=None,
        slug="s3",
        slug_size=1,
        process_types={},
        buildpacks=[],
    )
    store.finish_release("app", failed.version, succeeded=False)
    with pytest.raises(Conflict, match="never ran"):
        store.rollback("app", failed.version, "bob")
    assert store.slugs_in_use("app", keep=2) == {"s3", "s1"}


def test_destroying_an_app_removes_its_config_and_access(store: Store) -> None:
    store.add_key("bob", "SHA256:b", "k", admin=False)
    store.add_key("carol", "SHA256:c", "k", admin=False)
    store.create_app("app", "bob")
    store.change_config("app", {"A": "1"}, (), "bob")
    store.grant("app", "carol")
    store.delete_app("app")
    store.create_app("app", "carol")
    assert store.config("app") == {}
    assert store.collaborators("app") == []


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    store.create_app("app", "bob")
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO config VALUES ('app', 'X', '1')")
        raise RuntimeError("boom")
    assert store.config("app") == {}
