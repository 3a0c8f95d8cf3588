"""The built-in buildpacks, building real apps with the real toolchains."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from buildpacks import BuildError, compile_slug
from runtime.users import AppUser
from tests.buildpacks.conftest import Log, write_app


def in_slug(app: Path, profile: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in the slug the way a process starts: profile.d sourced first."""
    script = f". ./.profile.d/{profile} && {command}"
    return subprocess.run(
        ["/bin/sh", "-c", script],
        cwd=app,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(app)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_nothing_detected_lists_what_was_tried(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"README": "nothing to see"})
    with pytest.raises(BuildError) as raised:
        compile_slug(app, tmp_path / "cache", {}, log=log)
    assert str(raised.value) == (
        "no buildpack detected this app (tried built-in: python, node, static, procfile)"
    )


def test_procfile_only_app(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"Procfile": "web: ./server.sh\nworker: ./work.sh\n"})
    result = compile_slug(app, tmp_path / "cache", {}, log=log)
    assert result.buildpacks == ("Procfile",)
    assert result.process_types == {"web": "./server.sh", "worker": "./work.sh"}
    assert log.lines[0] == "-----> Procfile app detected"
    assert log.lines[-2:] == [
        "-----> Discovering process types",
        "       Procfile declares types -> web, worker",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: str = response.read().decode()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_static_site_is_served_by_its_default_web_process(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"public/index.html": "<h1>hello</h1>", "secret.txt": "x"})
    result = compile_slug(app, tmp_path / "cache", {}, log=log)
    assert result.buildpacks == ("Static HTML",)
    assert "       Default types for buildpack -> web" in log.lines
    port = _free_port()
    server = subprocess.Popen(
        ["/bin/sh", "-c", result.process_types["web"]],
        cwd=app,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _get(f"http://127.0.0.1:{port}/", time.monotonic() + 10) == "<h1>hello</h1>"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_detection_order_puts_procfile_last(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"index.html": "<p>hi</p>", "Procfile": "web: ./serve"})
    result = compile_slug(app, tmp_path / "cache", {}, log=log)
    assert result.buildpacks == ("Static HTML",)
    assert result.process_types == {"web": "./serve"}


def test_static_site_at_the_root(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"index.html": "<h1>hi</h1>"})
    result = compile_slug(app, tmp_path / "cache", {}, log=log)
    assert result.process_types["web"].endswith("--directory .")


# A local dependency with a command: no registry needed, and it shows up in
# node_modules/.bin, which the slug's profile puts on PATH.
PACKAGE = {
    "name": "app",
    "version": "1.0.0",
    "scripts": {"start": "node server.js"},
    "dependencies": {"greet": "file:greet"},
}
GREET = {"name": "greet", "version": "1.0.0", "bin": {"greet": "greet.js"}}
LOCK = {
    "name": "app",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "app", "version": "1.0.0", "dependencies": {"greet": "file:greet"}},
        "greet": {"version": "1.0.0", "bin": {"greet": "greet.js"}},
        "node_modules/greet": {"resolved": "greet", "link": True},
    },
}


@pytest.mark.parametrize(("lock", "installer"), [(True, "npm ci"), (False, "npm install")])
def test_node_app(tmp_path: Path, log: Log, lock: bool, installer: str) -> None:
    files = {
        "package.json": json.dumps(PACKAGE),
        "greet/package.json": json.dumps(GREET),
        "greet/greet.js": "#!/usr/bin/env node\nconsole.log('hello from greet');\n",
    }
    if lock:
        files["package-lock.json"] = json.dumps(LOCK)
    app = write_app(tmp_path / "app", files)
    result = compile_slug(app, tmp_path / "cache", {}, log=log)
    assert result.buildpacks == ("Node.js",)
    assert result.process_types == {"web": "npm start"}
    assert f"-----> Installing dependencies with {installer}" in log.lines
    assert (tmp_path / "cache" / "npm").is_dir()
    greeted = in_slug(app, "node.sh", "greet")
    assert greeted.stdout == "hello from greet\n", greeted.stderr


def test_python_app_cold_then_warm(shared_dir: Path, log: Log) -> None:
    """As the unprivileged app user when the tests run as root, as the platform would."""
    user = AppUser.named("nobody") if os.geteuid() == 0 else None
    cache = shared_dir / "cache"
    files = {"requirements.txt": "six\n", "Procfile": "web: python app.py\n", "app.py": ""}
    cold = write_app(shared_dir / "slug1", files)
    result = compile_slug(cold, cache, {}, log=log, user=user)
    assert result.buildpacks == ("Python",)
    assert result.process_types == {"web": "python app.py"}
    assert "-----> Python app detected" in log.lines
    assert "-----> Installing requirements with pip" in log.lines
    assert any("six" in line and line.startswith("       ") for line in log.lines)
    imported = in_slug(cold, "python.sh", 'python -c "import six; print(six.__file__)"')
    assert imported.stdout.startswith(f"{cold}/.venv/"), imported.stderr

    warm = write_app(shared_dir / "slug2", {**files, "app.py": "print('changed code')"})
    log.lines.clear()
    compile_slug(warm, cache, {}, log=log, user=user)
    assert "-----> Requirements unchanged: reusing the virtualenv from the last build" in log.lines
    assert not any("Collecting" in line or "Installing" in line for line in log.lines)
    imported = in_slug(warm, "python.sh", 'python -c "import six; print(six.__file__)"')
    assert imported.stdout.startswith(f"{warm}/.venv/"), imported.stderr
    pip = in_slug(warm, "python.sh", "pip --version")
    assert f"{warm}/.venv/" in pip.stdout, pip.stderr


def test_python_version_that_is_not_installed(tmp_path: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"requirements.txt": "", ".python-version": "3.99\n"})
    with pytest.raises(BuildError, match="build failed: Python buildpack's compile exited"):
        compile_slug(app, tmp_path / "cache", {}, log=log)
    assert " !     Python 3.99 is not installed on this platform" in log.text
