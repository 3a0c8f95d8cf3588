from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Platform, SshKey, make_key


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SshKey]:
    """Client keys: `admin` (registered first), `bob` and `carol` (plain users), `eve` (never)."""
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("admin", "bob", "carol", "eve")}


def start_platform(
    root: Path, keys: dict[str, SshKey], settings: dict[str, str] | None = None
) -> Platform:
    (root / "work").mkdir(parents=True)
    platform = Platform(root / "home", root / "work", settings)
    for name in ("admin", "bob", "carol"):
        added = platform.ouro("keys:add", "--name", name, str(keys[name].public))
        assert added.returncode == 0, added.stderr
    platform.start()
    return platform


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    """A running platform shared by a module's tests (each test uses its own apps)."""
    platform = start_platform(tmp_path_factory.mktemp("platform"), keys)
    yield platform
    assert platform.stop() == 0
