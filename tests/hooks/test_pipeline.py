"""`git push` becomes a running release: the receive pipeline end to end."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.harness import Platform, SshKey, commit, get, make_repo, wait_for

WEB = "web: python3 -m http.server $PORT --bind 127.0.0.1\n"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("pipeline")
    settings = {"OURO_BOOT_TIMEOUT": "5", "OURO_GRACE_PERIOD": "3", "OURO_KEEP_RELEASES": "2"}
    platform = start_platform(root, keys, settings)
    yield platform
    assert platform.stop() == 0


def push(
    platform: Platform, key: SshKey, repo: Path, app: str, ref: str = "main"
) -> subprocess.CompletedProcess[str]:
    return platform.git(key, "push", platform.url(app), ref, cwd=repo, check=False)


def remote_sha(platform: Platform, key: SshKey, app: str) -> str:
    out = platform.git(key, "ls-remote", platform.url(app), "refs/heads/main").stdout
    return out.split()[0] if out else ""


def test_a_push_deploys_and_serves(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "site", {"Procfile": WEB, "index.html": "<h1>v1</h1>\n"})
    result = push(platform, keys["bob"], repo, "site")
    assert result.returncode == 0, result.stderr
    lines = [line.removeprefix("remote: ").rstrip() for line in result.stderr.splitlines()]
    assert "-----> Discovering process types" in lines
    assert any(
        line.startswith("       Procfile declares types") and "-> web" in line for line in lines
    )
    assert any(line.startswith("-----> Compressing... done, ") for line in lines)
    assert "-----> Launching... done, v1" in lines
    assert f"       http://site.localhost:{platform.http_port}/ deployed to Ouro" in lines
    assert get(platform, "site.localhost") == (200, "<h1>v1</h1>\n")

    commit(repo, {"index.html": "<h1>v2</h1>\n"}, "second")
    result = push(platform, keys["bob"], repo, "site")
    assert "-----> Launching... done, v2" in result.stderr
    assert get(platform, "site.localhost") == (200, "<h1>v2</h1>\n")


def _buildpack(folder: Path, compile_script: str) -> Path:
    for name, text in {
        "detect": "#!/bin/sh\necho Failing\n",
        "compile": f"#!/bin/sh\n{compile_script}\n",
        "release": "#!/bin/sh\necho '--- {}'\n",
    }.items():
        path = folder / "bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_a_failed_build_leaves_the_running_release_alone(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    repo = make_repo(tmp_path / "keep", {"Procfile": WEB, "index.html": "good\n"})
    assert push(platform, bob, repo, "keeper").returncode == 0
    good = remote_sha(platform, bob, "keeper")
    pack = _buildpack(tmp_path / "failing", "echo 'compiler says boom' >&2; exit 1")
    os.chmod(tmp_path, 0o755)
    commit(repo, {".buildpacks": f"{pack}\n", "index.html": "bad\n"}, "break it")
    result = push(platform, bob, repo, "keeper")
    assert result.returncode != 0
    assert "! [remote rejected] main -> main (build failed)" in result.stderr
    assert "compiler says boom" in result.stderr
    assert remote_sha(platform, bob, "keeper") == good
    assert get(platform, "keeper.localhost") == (200, "good\n")


def test_release_phase_runs_before_the_new_processes(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    repo = make_repo(tmp_path / "rel", {"Procfile": WEB, "index.html": "one\n"})
    assert push(platform, bob, repo, "phased").returncode == 0
    commit(
        repo,
        {"Procfile": WEB + "release: echo migrating $DYNO; exit 3\n", "index.html": "two\n"},
        "bad migration",
    )
    result = push(platform, bob, repo, "phased")
    assert "(release phase failed (exit status 3))" in result.stderr
    assert "migrating release.1" in result.stderr
    assert get(platform, "phased.localhost") == (200, "one\n")

    commit(repo, {"Procfile": WEB + "release: echo migrated > migrated.txt; echo done\n"}, "fix")
    result = push(platform, bob, repo, "phased")
    assert result.returncode == 0, result.stderr
    assert "-----> Running release command..." in result.stderr
    assert get(platform, "phased.localhost") == (200, "two\n")
    assert get(platform, "phased.localhost", "/migrated.txt") == (200, "migrated\n")


@pytest.mark.parametrize(
    "web,reason",
    [
        ("web: exit 1", "web.1 crashed during boot"),
        ("web: sleep 600", "web.1 did not listen on $PORT in time"),
    ],
)
def test_a_web_process_that_does_not_come_up_rejects_the_push(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path, web: str, reason: str
) -> None:
    bob = keys["bob"]
    app = "noboot-" + str(abs(hash(web)) % 10000)
    repo = make_repo(tmp_path / "nb", {"Procfile": WEB, "index.html": "fine\n"})
    assert push(platform, bob, repo, app).returncode == 0
    commit(repo, {"Procfile": web + "\n"}, "broken web")
    result = push(platform, bob, repo, app)
    assert result.returncode != 0
    assert f"(deploy failed: {reason})" in result.stderr
    assert get(platform, f"{app}.localhost") == (200, "fine\n")


def test_only_main_or_master_deploys(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "br", {"Procfile": WEB, "index.html": "x\n"})
    result = push(platform, keys["bob"], repo, "branchy", "main:feature")
    assert result.returncode != 0
    assert "main -> feature (only main or master" in result.stderr


def test_a_second_push_to_the_same_app_waits(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    slow = WEB + "release: sleep 3\n"
    first = make_repo(tmp_path / "one", {"Procfile": slow, "index.html": "one\n"})
    second = make_repo(tmp_path / "two", {"Procfile": WEB, "index.html": "two\n"}, branch="master")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_SSH_COMMAND=" ".join(platform.ssh_command(bob)), HOME=str(platform.work))
    with subprocess.Popen(
        ["git", "push", platform.url("queue-app"), "main"],
        cwd=first,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as running:
        assert running.stderr is not None
        seen = []
        for line in running.stderr:
            seen.append(line)
            if "Running release command" in line:
                break
        waiting = push(platform, bob, second, "queue-app", "master")
        seen.append(running.stderr.read())
        assert running.wait(timeout=60) == 0, "".join(seen)
    assert waiting.returncode == 0, waiting.stderr
    assert "Another deploy of queue-app is in progress: waiting" in waiting.stderr
    assert "-----> Launching... done, v2" in waiting.stderr
    wait_for(
        lambda: get(platform, "queue-app.localhost") == (200, "two\n"), what="the second deploy"
    )


def test_a_python_app_with_a_dependency(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    server = (
        "import http.server, os, six\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = ('six ' + six.__version__ + ' uid ' + str(os.getuid())).encode()\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
    )
    repo = make_repo(
        tmp_path / "py",
        {
            "requirements.txt": "six\n",
            "server.py": server,
            "Procfile": "web: python server.py\n",
        },
    )
    result = push(platform, keys["bob"], repo, "pyapp")
    assert result.returncode == 0, result.stderr
    assert "Python app detected" in result.stderr
    status, body = get(platform, "pyapp.localhost")
    assert status == 200 and body.startswith("six 1.")
    assert not body.endswith(" uid 0")  # app code never runs as root


def test_a_node_app(platform: Platform, keys: dict[str, SshKey], tmp_path: Path) -> None:
    server = (
        "require('http').createServer((q, r) => r.end('node ' + process.version))"
        ".listen(process.env.PORT, '127.0.0.1');\n"
    )
    package = '{"name": "n", "version": "1.0.0", "scripts": {"start": "node server.js"}}\n'
    repo = make_repo(tmp_path / "node", {"package.json": package, "server.js": server})
    result = push(platform, keys["bob"], repo, "nodeapp")
    assert result.returncode == 0, result.stderr
    status, body = get(platform, "nodeapp.localhost")
    assert status == 200 and body.startswith("node v")


def test_old_slugs_are_pruned(platform: Platform, keys: dict[str, SshKey], tmp_path: Path) -> None:
    bob = keys["bob"]
    repo = make_repo(tmp_path / "pr", {"Procfile": WEB, "index.html": "0\n"})
    assert push(platform, bob, repo, "pruned").returncode == 0
    for n in range(1, 4):
        commit(repo, {"index.html": f"{n}\n"}, f"change {n}")
        assert push(platform, bob, repo, "pruned").returncode == 0
    slugs = platform.home / "slugs" / "pruned"
    wait_for(lambda: not list(slugs.glob("*.tmp")), what="the archives to be written")
    assert len([p for p in slugs.iterdir() if p.is_dir()]) == 2  # OURO_KEEP_RELEASES
    assert len(list(slugs.glob("*.tgz"))) <= 2
    refused = platform.ssh(bob, "rollback", "-a", "pruned", "v1")
    assert refused.returncode == 1 and "pruned" in refused.stderr
    assert platform.ssh(bob, "rollback", "-a", "pruned").returncode == 0
    assert get(platform, "pruned.localhost") == (200, "2\n")
