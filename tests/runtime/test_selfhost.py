"""The platform upgrades itself by `git push` (DESIGN §4).

A push of this repository to app `ouro` builds it with the Python buildpack,
rolls gitd, the router and the scheduler onto the new release while an app
keeps serving, then the supervisor re-executes into the new code. A broken
platform release is refused and changes nothing; `rollback -a ouro` goes back.
The tests run in order on one platform: each starts from where the last left it,
and each can also run alone.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.gitd.deployed import deploy, ok
from tests.harness import GRACEFUL_SERVER as SERVER
from tests.harness import Platform, RequestLoop, SshKey, commit, get, platform_repo, wait_for

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "OURO_BOOT_TIMEOUT": "10",
    "OURO_GRACE_PERIOD": "5",
    "OURO_CRON_SECONDS": "1",
}
APP = "steady"
GITD_MAIN = "gitd/__main__.py"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    platform = start_platform(tmp_path_factory.mktemp("selfhost"), keys, SETTINGS)
    try:
        yield platform
    finally:
        assert platform.stop() == 0


@pytest.fixture(scope="module")
def steady(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The app that keeps serving v1 while the platform changes under it."""
    files = {"app.py": SERVER.format(version="v1"), "Procfile": "web: python3 app.py\n"}
    deploy(platform, keys["admin"], tmp_path_factory.mktemp("steady"), APP, files)
    return APP


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return platform_repo(tmp_path_factory.mktemp("source"))


def _pids(platform: Platform, key: SshKey, app: str) -> dict[str, int]:
    processes = json.loads(ok(platform.ssh(key, "ps", "--json", "-a", app)))
    return {p["name"]: p["pid"] for p in processes if p["pid"]}


def _logs(platform: Platform, key: SshKey, app: str) -> str:
    return ok(platform.ssh(key, "logs", "-a", app, "-n", "1500"))


def _supervisor(platform: Platform) -> dict[str, object]:
    status: dict[str, object] = json.loads((platform.home / "run" / "ouro.json").read_text())
    return status


def _wait_for_supervisor(platform: Platform, commit: str) -> None:
    """Until the supervisor re-executed into `commit`; on timeout, says what the
    platform's log says (the re-exec may have been refused)."""
    try:
        wait_for(lambda: _supervisor(platform)["commit"] == commit, what=f"a re-exec to {commit}")
    except TimeoutError:
        log = (platform.home / "logs" / "ouro" / "ouro.log").read_text().splitlines()
        raise AssertionError("\n".join(log[-40:])) from None


def _push(platform: Platform, key: SshKey, source: Path) -> subprocess.CompletedProcess[str]:
    """Forced: a test rewinds `source` past its broken commit, which may have landed."""
    return platform.git(key, "push", "-f", platform.url("ouro"), "main", cwd=source, check=False)


def _installed_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip


def test_a_push_of_the_platform_upgrades_it_while_apps_serve(
    platform: Platform, keys: dict[str, SshKey], source: Path, steady: str
) -> None:
    admin = keys["admin"]
    ok(platform.ssh(admin, "addons:create", "-a", APP, "postgres"))
    ok(platform.ssh_raw(admin, f"cron:add -a {APP} '*/2 * * * * *' echo tick"))
    wait_for(lambda: "app[scheduler." in _logs(platform, admin, APP), what="a first cron run")
    app_pids, platform_pids = _pids(platform, admin, APP), _pids(platform, admin, "ouro")
    supervisor = _supervisor(platform)["pid"]
    sha = commit(source, {"UPGRADED": "yes\n"}, "An upgrade")

    refused = _push(platform, keys["bob"], source)
    assert refused.returncode != 0 and "Couldn't find that app: ouro" in refused.stderr

    with RequestLoop(platform.http_port, f"{APP}.localhost") as load:
        pushed = _push(platform, admin, source)
        assert pushed.returncode == 0, pushed.stderr
        assert f"The platform runs {sha[:7]} (v2)" in pushed.stderr
        _wait_for_supervisor(platform, sha[:7])
        served = len(load.bodies)
        wait_for(lambda: len(load.bodies) > served + 20, what="requests after the upgrade")
    assert load.failures == []
    assert ok(platform.ssh(admin, "version")).strip().endswith(f"({sha[:7]})")
    assert _supervisor(platform)["pid"] == supervisor  # re-executed in place
    assert _pids(platform, admin, APP) == app_pids  # no app process restarted
    upgraded = _pids(platform, admin, "ouro")
    assert set(upgraded) == {"gitd.1", "router.1", "scheduler.1", "postgres.1"}
    assert upgraded.pop("postgres.1") == platform_pids.pop("postgres.1")  # same binary
    assert all(upgraded[name] != pid for name, pid in platform_pids.items())
    releases = ok(platform.ssh(admin, "releases", "-a", "ouro"))
    assert f"v2  Deploy {sha[:7]}" in releases

    # The old scheduler was gone before the new one started: no job ran twice.
    logs = _logs(platform, admin, "ouro").splitlines()
    starts = [i for i, line in enumerate(logs) if "ouro[scheduler.1]: Starting process" in line]
    exits = [i for i, line in enumerate(logs) if "ouro[scheduler.1]: Process exited" in line]
    assert len(starts) == 2 and any(starts[0] < i < starts[1] for i in exits)
    assert "ouro[api]: Platform re-executed" in "\n".join(logs[starts[1] :])
    ticks = _logs(platform, admin, APP).count("tick")
    wait_for(lambda: _logs(platform, admin, APP).count("tick") > ticks, what="cron after")


@pytest.mark.parametrize(
    ("path", "breakage", "reason"),
    [
        (GITD_MAIN,
         ("if __name__ == \"__main__\":\n",
          "if __name__ == \"__main__\":\n    sys.exit('gitd is broken on purpose')\n"),
         "gitd.1 exited before it was ready"),
        ("runtime/ops.py",
         ("from __future__ import annotations\n",
          "from __future__ import annotations\nimport no_such_module_anywhere\n"),
         "cannot run the platform: ModuleNotFoundError: No module named 'no_such_module"),
        ("runtime/router/__main__.py",
         ("feeder = loop.create_task(link.follow(table))",
          "feeder = loop.create_task(asyncio.sleep(3600))"),  # never takes routes
         "router.1 was not ready within 10 seconds"),
    ],
    ids=["gitd-exits-at-start", "import-error", "router-never-ready"],
)  # fmt: skip
def test_a_broken_platform_release_is_refused(
    platform: Platform,
    keys: dict[str, SshKey],
    source: Path,
    steady: str,
    path: str,
    breakage: tuple[str, str],
    reason: str,
) -> None:
    admin = keys["admin"]
    running = ok(platform.ssh(admin, "version")).strip()
    before = _pids(platform, admin, "ouro")
    text = (source / path).read_text()
    assert breakage[0] in text
    sha = commit(source, {path: text.replace(breakage[0], breakage[1], 1)}, "Broken")

    pushed = _push(platform, admin, source)
    assert pushed.returncode != 0
    assert reason in pushed.stderr
    assert ok(platform.ssh(admin, "version")).strip() == running
    assert _pids(platform, admin, "ouro") == before
    assert get(platform, f"{APP}.localhost") == (200, "v1")
    release = re.search(rf"v(\d+)  Deploy {sha[:7]}.*failed", _releases(platform, admin))
    assert release is not None
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=source, check=True)


def _releases(platform: Platform, key: SshKey) -> str:
    return ok(platform.ssh(key, "releases", "-a", "ouro"))


def _commit_gitd(
    source: Path, message: str, before: tuple[str, ...] = (), after: tuple[str, ...] = ()
) -> str:
    """Commit a gitd that runs `before` just before it says it is ready, `after` just after."""
    main = (source / GITD_MAIN).read_text()
    ready = re.search(r"\n( +)(print\(f\"gitd listening.*\n)", main)
    assert ready is not None
    indent = ready.group(1)
    lines = [*before, ready.group(2).rstrip("\n"), *after]
    changed = "".join(f"\n{indent}{line}" for line in lines) + "\n"
    return commit(source, {GITD_MAIN: main.replace(ready.group(0), changed, 1)}, message)


def test_a_release_that_crashes_after_it_came_up_is_rolled_back(
    platform: Platform, keys: dict[str, SshKey], source: Path, steady: str
) -> None:
    admin = keys["admin"]
    running = ok(platform.ssh(admin, "version")).strip()
    sha = _commit_gitd(
        source, "Crashes after it starts", after=("await asyncio.sleep(1.0)", "return 3")
    )

    pushed = _push(platform, admin, source)
    assert pushed.returncode == 0, pushed.stderr  # it came up: the push succeeds
    wait_for(
        # while gitd crashes, ssh may fail: that is the point
        lambda: (
            "crashed after it came up (gitd.1): rolling back"
            in platform.ssh(admin, "logs", "-a", "ouro", "-n", "1500").stdout
        ),
        what="the crash-loop rollback",
    )
    wait_for(
        lambda: platform.ssh(admin, "version").stdout.strip() == running, what="the previous code"
    )
    _wait_for_supervisor(platform, running.rsplit("(", 1)[1].rstrip(")"))  # its commit
    assert f"Deploy {sha[:7]}" in _releases(platform, admin)
    assert get(platform, f"{APP}.localhost") == (200, "v1")
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=source, check=True)


def test_a_platform_killed_in_the_middle_of_an_upgrade_comes_back_on_its_release(
    platform: Platform, keys: dict[str, SshKey], source: Path, steady: str
) -> None:
    admin = keys["admin"]
    running = ok(platform.ssh(admin, "version")).strip()
    sha = _commit_gitd(source, "Slow to start", before=("await asyncio.sleep(120.0)",))
    pushes: list[subprocess.CompletedProcess[str]] = []
    pusher = threading.Thread(target=lambda: pushes.append(_push(platform, admin, source)))
    pusher.start()
    try:
        wait_for(lambda: f"Deploy {sha[:7]} (pending)" in _releases(platform, admin), what="v")
        assert platform.proc is not None
        platform.proc.send_signal(signal.SIGKILL)
        platform.proc.wait(timeout=30)
        platform.proc = None
    finally:
        pusher.join()
    assert pushes[0].returncode != 0

    platform.start()
    assert ok(platform.ssh(admin, "version")).strip() == running
    assert re.search(rf"Deploy {sha[:7]}.*failed", _releases(platform, admin))
    assert get(platform, f"{APP}.localhost") == (200, "v1")
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=source, check=True)


def test_ouro_up_starts_from_the_current_release_and_rollback_reaches_v1(
    platform: Platform, keys: dict[str, SshKey], steady: str
) -> None:
    admin = keys["admin"]
    current = ok(platform.ssh(admin, "version")).strip()  # the first upgrade's
    platform.stop()
    platform.start()
    assert ok(platform.ssh(admin, "version")).strip() == current
    assert get(platform, f"{APP}.localhost") == (200, "v1")

    app_pids = _pids(platform, admin, APP)
    rolled = platform.ssh(admin, "rollback", "-a", "ouro", "v1")
    assert rolled.returncode == 0, rolled.stderr
    installed = _installed_commit()
    _wait_for_supervisor(platform, installed)
    assert ok(platform.ssh(admin, "version")).strip().endswith(f"({installed})")
    assert _pids(platform, admin, APP) == app_pids
    assert get(platform, f"{APP}.localhost") == (200, "v1")


def test_when_the_new_supervisor_cannot_take_over_the_previous_one_resumes(
    platform: Platform, keys: dict[str, SshKey], source: Path, steady: str
) -> None:
    admin = keys["admin"]
    before = _supervisor(platform)
    app_pids = _pids(platform, admin, APP)
    path = "runtime/supervisor.py"
    text = (source / path).read_text()
    adopt = re.search(r"\n    def _adopt\(self, .*\n        \"\"\".*\"\"\"\n", text)
    assert adopt is not None
    broken = adopt.group(0) + '        raise RuntimeError("cannot adopt, on purpose")\n'
    sha = commit(source, {path: text.replace(adopt.group(0), broken, 1)}, "No re-exec")

    pushed = _push(platform, admin, source)
    assert pushed.returncode == 0, pushed.stderr  # gitd and the router came up
    wait_for(
        lambda: (
            "could not take over (RuntimeError: cannot adopt, on purpose)"
            in _logs(platform, admin, "ouro")
        ),
        what="the fallback",
    )
    after = _supervisor(platform)
    assert (after["pid"], after["commit"]) == (before["pid"], before["commit"])
    assert ok(platform.ssh(admin, "version")).strip().endswith(f"({sha[:7]})")
    assert _pids(platform, admin, APP) == app_pids
    assert get(platform, f"{APP}.localhost") == (200, "v1")
