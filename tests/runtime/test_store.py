"""The state store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.store import MIGRATIONS, Conflict, NotFound, Store, StoreError


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


def test_config_writes_are_all_or_nothing(store: Store) -> None:
    store.create_app("app", "bob")
    store.set_config("app", {"A": "1", "B": "two words"})
    with pytest.raises(NotFound):
        store.set_config("missing", {"A": "1"})
    store.unset_config("app", ["A", "NOT_THERE"])
    assert store.config("app") == {"B": "two words"}


def test_destroying_an_app_removes_its_config_and_access(store: Store) -> None:
    store.add_key("bob", "SHA256:b", "k", admin=False)
    store.add_key("carol", "SHA256:c", "k", admin=False)
    store.create_app("app", "bob")
    store.set_config("app", {"A": "1"})
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
