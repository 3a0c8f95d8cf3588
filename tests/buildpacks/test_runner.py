"""The buildpack runner with real third-party buildpacks (shell scripts)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from buildpacks import BuildError, compile_slug
from runtime.users import AppUser
from tests.buildpacks.conftest import (
    Log,
    process_gone,
    release_yaml,
    requires_root,
    write_app,
    write_buildpack,
)


def test_custom_buildpack_api(tmp_path: Path, cache: Path, log: Log) -> None:
    """detect/compile/release arguments, ENV_DIR, a cleared environment, output shape."""
    buildpack = write_buildpack(
        tmp_path / "bp",
        detect='[ -f "$1/app.txt" ] && echo "Custom Thing"',
        compile_script="""
echo "-----> Compiling"
echo "       to $1 with cache $2" >&2
cp -r "$3" "$1/env-dir-copy"
env > "$1/compile-env"
pwd > "$1/compile-cwd"
touch "$2/cached"
""",
        release=release_yaml(
            "---\nconfig_vars:\n  FROM_RELEASE: yes\n"
            "default_process_types:\n  web: ./serve\n  worker: ./work\naddons:\n  - postgres"
        ),
    )
    app = write_app(tmp_path / "app", {"app.txt": "", "Procfile": "web: ./better-serve\n"})
    os.environ["OURO_TEST_LEAK"] = "secret"
    try:
        result = compile_slug(
            app, cache, {"GREETING": "hi\n", "EMPTY": ""}, buildpacks=[str(buildpack)], log=log
        )
    finally:
        del os.environ["OURO_TEST_LEAK"]

    assert result.buildpacks == ("Custom Thing",)
    assert result.process_types == {"web": "./better-serve", "worker": "./work"}
    assert result.config_vars == {"FROM_RELEASE": "yes"}
    assert result.addons == ("postgres",)
    assert (app / "env-dir-copy" / "GREETING").read_bytes() == b"hi\n"
    assert (app / "env-dir-copy" / "EMPTY").read_bytes() == b""
    assert (cache / "cached").exists()
    assert (app / "compile-cwd").read_text().strip() == str(app)
    environment = dict(
        line.split("=", 1) for line in (app / "compile-env").read_text().splitlines() if "=" in line
    )
    assert environment["STACK"] == "ouro-1"
    assert "OURO_TEST_LEAK" not in environment and "GREETING" not in environment
    assert set(environment) <= {"PATH", "HOME", "LANG", "STACK", "PWD", "SHLVL", "_"}
    assert log.lines == [
        "-----> Custom Thing app detected",
        "-----> Compiling",
        f"       to {app} with cache {cache}",
        "-----> Discovering process types",
        "       Procfile declares types     -> web",
        "       Default types for buildpack -> web, worker",
    ]
    # The ENV_DIR was a temporary directory, gone after the build.
    scratch = Path(environment["HOME"]).parent
    assert not scratch.exists()


def test_multi_buildpack_export_chain(tmp_path: Path, cache: Path, log: Log) -> None:
    first = write_buildpack(
        tmp_path / "first",
        detect='echo "First"',
        compile_script='echo "export FROM_FIRST=\'hello there\'" > "$(dirname "$0")/../export"',
    )
    second = write_buildpack(
        tmp_path / "second",
        detect='echo "Second"',
        compile_script='printf "%s" "$FROM_FIRST" > "$1/seen"',
    )
    listing = f"# run in order\n{first}\n\n{second}\n"
    app = write_app(tmp_path / "app", {".buildpacks": listing, "Procfile": "web: true"})
    result = compile_slug(app, cache, {}, log=log)
    assert result.buildpacks == ("First", "Second")
    assert (app / "seen").read_text() == "hello there"
    detected = [line for line in log.lines if line.endswith("app detected")]
    assert detected == ["-----> First app detected", "-----> Second app detected"]


def _named(tmp_path: Path, name: str) -> Path:
    return write_buildpack(
        tmp_path / name, detect=f"echo {name}", compile_script=f'echo {name} > "$1/ran"'
    )


def test_selection_order(tmp_path: Path, cache: Path, log: Log) -> None:
    """App settings beat .buildpacks, which beats BUILDPACK_URL."""
    settings, listing, url = (_named(tmp_path, n) for n in ("settings", "listing", "url"))
    app = write_app(tmp_path / "app", {".buildpacks": f"{listing}\n"})
    env = {"BUILDPACK_URL": str(url)}
    assert compile_slug(app, cache, env, buildpacks=[str(settings)], log=log).buildpacks == (
        "settings",
    )
    assert compile_slug(app, cache, env, log=log).buildpacks == ("listing",)
    (app / ".buildpacks").unlink()
    assert compile_slug(app, cache, env, log=log).buildpacks == ("url",)
    assert (app / "ran").read_text() == "url\n"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_url_buildpack_with_branch(tmp_path: Path, cache: Path, log: Log) -> None:
    repo = write_buildpack(tmp_path / "repo", detect="echo main-branch")
    _git("init", "--quiet", "--initial-branch=main", cwd=repo)
    _git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qam",
        "x",
        "--allow-empty",
        cwd=repo,
    )
    _git("add", ".", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "main", cwd=repo)
    _git("checkout", "-qb", "feature", cwd=repo)
    (repo / "bin" / "detect").write_text("#!/bin/sh\necho Feature Branch\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "feature", cwd=repo)
    _git("checkout", "-q", "main", cwd=repo)

    clones = tmp_path / "clones"
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    reference = f"file://{repo}#feature"
    for _ in range(2):  # the second build fetches into the existing clone
        result = compile_slug(app, cache, {}, buildpacks=[reference], log=log, clone_dir=clones)
        assert result.buildpacks == ("Feature Branch",)
    assert len([p for p in clones.iterdir() if p.is_dir()]) == 1
    assert f"-----> Fetching buildpack {reference}" in log.lines
    default = compile_slug(app, cache, {}, buildpacks=[str(repo)], log=log, clone_dir=clones)
    assert default.buildpacks == ("main-branch",)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "rubyish",
            r"unknown buildpack 'rubyish': not a built-in \(python, node, static, procfile\)",
        ),
        ("/no/such/buildpack", "buildpack path /no/such/buildpack does not exist"),
        ("file:///no/such/repo.git", "could not fetch buildpack file:///no/such/repo.git: "),
        (
            "https://user:token@127.0.0.1:1/x.git#main",
            r"could not fetch buildpack https://127.0.0.1:1/x.git",
        ),
        ("file:///x.git#--upload-pack=evil", "invalid git ref"),
    ],
)
def test_bad_references(
    tmp_path: Path, cache: Path, log: Log, reference: str, message: str
) -> None:
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(BuildError, match=message) as raised:
        compile_slug(app, cache, {}, buildpacks=[reference], log=log, clone_dir=tmp_path / "c")
    assert "token" not in str(raised.value)


def test_buildpack_without_executable_compile(tmp_path: Path, cache: Path, log: Log) -> None:
    buildpack = write_buildpack(tmp_path / "bp", executable=False)
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(BuildError, match="bin/compile is not executable"):
        compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log)
    (buildpack / "bin" / "compile").unlink()
    with pytest.raises(BuildError, match="has no bin/compile"):
        compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log)


def test_explicit_buildpack_that_declines_the_app(tmp_path: Path, cache: Path, log: Log) -> None:
    buildpack = write_buildpack(tmp_path / "bp", detect="exit 1")
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(BuildError, match=f"app not compatible with buildpack {buildpack}"):
        compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log)


def test_failing_compile_shows_its_output(tmp_path: Path, cache: Path, log: Log) -> None:
    buildpack = write_buildpack(
        tmp_path / "bp", compile_script='echo "-----> Trying"\necho " !     it broke" >&2\nexit 3'
    )
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(
        BuildError, match=r"^build failed: Custom buildpack's compile exited with status 3$"
    ):
        compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log)
    assert log.lines[-2:] == ["-----> Trying", " !     it broke"]


def test_timeout_kills_the_whole_process_group(tmp_path: Path, cache: Path, log: Log) -> None:
    buildpack = write_buildpack(
        tmp_path / "bp",
        compile_script='sleep 600 &\necho $! > "$1/child.pid"\necho started\nwait',
    )
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(BuildError, match=r"build timed out after 0.5s"):
        compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log, timeout=0.5)
    assert "started" in log.lines
    child = int((app / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while not process_gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_gone(child)


def test_children_left_behind_by_compile_are_killed(tmp_path: Path, cache: Path, log: Log) -> None:
    buildpack = write_buildpack(
        tmp_path / "bp", compile_script='sleep 600 >/dev/null 2>&1 &\necho $! > "$1/child.pid"'
    )
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    compile_slug(app, cache, {}, buildpacks=[str(buildpack)], log=log)
    child = int((app / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while not process_gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_gone(child)


def test_malformed_procfile_fails_the_build(tmp_path: Path, cache: Path, log: Log) -> None:
    app = write_app(tmp_path / "app", {"Procfile": "web: ./serve\nworker ./work\n"})
    with pytest.raises(BuildError, match=r"^Procfile line 2: expected 'type: command'"):
        compile_slug(app, cache, {}, log=log)


def test_procfile_symlink_out_of_the_app_is_refused(tmp_path: Path, cache: Path, log: Log) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:hash\n")
    app = write_app(tmp_path / "app", {"index.html": "<p>hi</p>"})
    (app / "Procfile").symlink_to(secret)
    with pytest.raises(BuildError, match="Procfile points outside the app's directory") as raised:
        compile_slug(app, cache, {}, log=log)
    assert "hash" not in str(raised.value)


@requires_root()
def test_buildpacks_run_as_the_app_user(shared_dir: Path, log: Log) -> None:
    nobody = AppUser.named("nobody")
    outside = shared_dir / "outside"
    outside.mkdir()  # root's, mode 0755: not the build's to write
    buildpack = write_buildpack(
        shared_dir / "bp",
        compile_script=f"""
id -u > "$1/uid"
cat "$3/TOKEN" > "$1/token"
touch "$2/cache-ok"
touch {outside}/escaped 2>/dev/null && echo escaped
echo done
""",
    )
    app = write_app(shared_dir / "app", {"Procfile": "web: true"})
    cache = shared_dir / "cache"
    result = compile_slug(
        app, cache, {"TOKEN": "t0k"}, buildpacks=[str(buildpack)], log=log, user=nobody
    )
    assert result.buildpacks == ("Custom",)
    assert (app / "uid").read_text().strip() == str(nobody.uid)
    assert (app / "token").read_text() == "t0k"
    assert (cache / "cache-ok").stat().st_uid == nobody.uid
    assert not (outside / "escaped").exists()
    assert "escaped" not in log.lines and "done" in log.lines


@requires_root()
def test_unreachable_build_dir_for_the_app_user(tmp_path: Path, cache: Path, log: Log) -> None:
    # tmp_path lies under /tmp/pytest-of-root, which is mode 0700.
    app = write_app(tmp_path / "app", {"Procfile": "web: true"})
    with pytest.raises(BuildError, match="the build user nobody cannot reach"):
        compile_slug(app, cache, {}, log=log, user=AppUser.named("nobody"))
