"""compile_slug: turn a checked-out commit into a slug with Heroku buildpacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from buildpacks import git
from buildpacks.errors import BuildError
from buildpacks.process import Outcome, Sandbox, run
from buildpacks.procfile import parse_procfile
from buildpacks.release import Release, parse_release
from buildpacks.sources import BUILTINS, Buildpack, Selection, kind, select
from buildpacks.workspace import Workspace, hand_over, read_app_file, stage, workspace
from runtime.users import AppUser

STACK = "ouro-1"
DEFAULT_TIMEOUT = 900.0
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Shell bookkeeping that sourcing an ``export`` file adds, not the buildpack's.
_SHELL_VARS = {"PWD", "OLDPWD", "SHLVL", "_"}


@dataclass(frozen=True)
class BuildResult:
    buildpacks: tuple[str, ...]  # display names that ran, e.g. ("Python",)
    process_types: dict[str, str]  # Procfile (wins) over default_process_types
    config_vars: dict[str, str]  # bin/release config_vars
    addons: tuple[str, ...]


def compile_slug(
    build_dir: Path,
    cache_dir: Path,
    env: Mapping[str, str],
    *,
    buildpacks: Sequence[str] = (),
    log: Callable[[str], None],
    user: AppUser | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    clone_dir: Path | None = None,
) -> BuildResult:
    """Detect and run buildpacks over ``build_dir`` in place; raises ``BuildError``.

    ``cache_dir`` persists between builds of one app and is shared by all its
    buildpacks, as on Heroku. ``env`` (the app's config vars) reaches the
    buildpacks only as ENV_DIR; their own environment is cleared.
    ``timeout`` bounds the whole build, clones included.
    """
    build_dir, cache_dir = build_dir.absolute(), cache_dir.absolute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    selection = select(build_dir, env, buildpacks)
    kinds = [kind(reference) for reference in selection.references]
    with workspace(env, user) as space:
        hand_over(build_dir, user)
        hand_over(cache_dir, user, trust_owned_root=True)
        sandbox = Sandbox(_base_env(space), user, deadline, log)
        pairs = enumerate(zip(selection.references, kinds, strict=True))
        staged = [_stage(n, ref, what, space, clone_dir, sandbox) for n, (ref, what) in pairs]
        chosen = _detect(staged, selection, build_dir, sandbox, timeout)
        releases: list[Release] = []
        for buildpack, name in chosen:
            log(f"-----> {name} app detected")
            _compile(buildpack, name, build_dir, cache_dir, space, sandbox, timeout)
            releases.append(_release(buildpack, name, build_dir, sandbox, timeout))
            sandbox = _apply_export(buildpack, build_dir, sandbox)
    return _result(tuple(name for _, name in chosen), releases, build_dir, log)


def _base_env(space: Workspace) -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "HOME": str(space.home), "LANG": "C.UTF-8", "STACK": STACK}


def _stage(
    number: int,
    reference: str,
    what: str,
    space: Workspace,
    clone_dir: Path | None,
    sandbox: Sandbox,
) -> Buildpack:
    """A private copy of the buildpack, checked to have a runnable bin/compile."""
    copy = space.buildpacks / f"{number:02d}"
    if what == "builtin":
        return _staged(Buildpack(reference, BUILTINS[reference], builtin=True), copy, sandbox)
    if what == "directory":
        return _staged(Buildpack(reference, Path(reference)), copy, sandbox)
    url, ref = git.split_ref(reference)
    shown = git.redact(url) + (f"#{ref}" if ref else "")
    where = clone_dir or space.root / "clones"
    with git.checkout(url, ref, where, sandbox.deadline, sandbox.log) as tree:
        return _staged(Buildpack(shown, tree), copy, sandbox)


def _staged(buildpack: Buildpack, copy: Path, sandbox: Sandbox) -> Buildpack:
    buildpack.check_runnable()
    return buildpack.at(stage(buildpack.path, copy, sandbox.user))


def _detect(
    staged: list[Buildpack], selection: Selection, build_dir: Path, sandbox: Sandbox, timeout: float
) -> list[tuple[Buildpack, str]]:
    """Explicit buildpacks must each accept the app; otherwise the first built-in that does."""
    if selection.explicit:
        chosen = []
        for buildpack in staged:
            name = _detect_name(buildpack, build_dir, sandbox, timeout)
            if name is None:
                raise BuildError(f"app not compatible with buildpack {buildpack.reference}")
            chosen.append((buildpack, name))
        return chosen
    for buildpack in staged:
        name = _detect_name(buildpack, build_dir, sandbox, timeout)
        if name is not None:
            return [(buildpack, name)]
    tried = ", ".join(selection.references)
    raise BuildError(f"no buildpack detected this app (tried {selection.source}: {tried})")


def _detect_name(
    buildpack: Buildpack, build_dir: Path, sandbox: Sandbox, timeout: float
) -> str | None:
    """bin/detect's name for the app, or None when it declines the app."""
    fallback = Path(buildpack.reference.partition("#")[0].rstrip("/")).name.removesuffix(".git")
    if not buildpack.has("detect"):
        return fallback
    outcome = _run(buildpack, "detect", build_dir, sandbox, timeout, capture=True)
    if outcome.status != 0:
        return None
    lines = outcome.stdout.strip().splitlines()
    return (lines[0].strip() if lines else "") or fallback


def _compile(
    buildpack: Buildpack,
    name: str,
    build_dir: Path,
    cache_dir: Path,
    space: Workspace,
    sandbox: Sandbox,
    timeout: float,
) -> None:
    args = (str(cache_dir), str(space.env_dir))
    outcome = _run(buildpack, "compile", build_dir, sandbox, timeout, args=args)
    if outcome.status != 0:
        raise BuildError(f"build failed: {name} buildpack's compile {_exit(outcome.status)}")


def _release(
    buildpack: Buildpack, name: str, build_dir: Path, sandbox: Sandbox, timeout: float
) -> Release:
    if not buildpack.has("release"):
        return Release()
    outcome = _run(buildpack, "release", build_dir, sandbox, timeout, capture=True)
    if outcome.status != 0:
        raise BuildError(f"build failed: {name} buildpack's release {_exit(outcome.status)}")
    try:
        return parse_release(outcome.stdout)
    except BuildError as error:
        raise BuildError(f"{name} buildpack's {error}") from None


def _run(
    buildpack: Buildpack,
    script: str,
    build_dir: Path,
    sandbox: Sandbox,
    timeout: float,
    *,
    args: tuple[str, ...] = (),
    capture: bool = False,
) -> Outcome:
    argv = buildpack.command(script, str(build_dir), *args)
    try:
        outcome = run(argv, sandbox, cwd=build_dir, capture=capture)
    except OSError as error:
        raise BuildError(
            f"buildpack {buildpack.reference}: cannot run bin/{script}: {error.strerror}"
        ) from None
    if outcome.timed_out:
        raise BuildError(
            f"build timed out after {timeout:g}s (buildpack {buildpack.reference}, bin/{script})"
        )
    return outcome


def _exit(status: int | None) -> str:
    if status is not None and status < 0:
        return f"was killed by signal {-status}"
    return f"exited with status {status}"


def _apply_export(buildpack: Buildpack, build_dir: Path, sandbox: Sandbox) -> Sandbox:
    """Later buildpacks run in the environment this one's ``export`` file sets up."""
    export = buildpack.path / "export"
    if not export.is_file():
        return sandbox
    script = '. "$1" >/dev/null && exec env -0'
    outcome = run(
        ["/bin/sh", "-c", script, "sh", str(export)], sandbox, cwd=build_dir, capture=True
    )
    if outcome.status != 0:
        raise BuildError(f"buildpack {buildpack.reference}: its export file failed to load")
    pairs = (item.partition("=") for item in outcome.stdout.split("\0") if "=" in item)
    return sandbox.with_env({key: value for key, _, value in pairs if key not in _SHELL_VARS})


def _result(
    names: tuple[str, ...], releases: list[Release], build_dir: Path, log: Callable[[str], None]
) -> BuildResult:
    defaults: dict[str, str] = {}
    config_vars: dict[str, str] = {}
    addons: list[str] = []
    for release in releases:
        defaults.update(release.default_process_types)
        config_vars.update(release.config_vars)
        addons.extend(addon for addon in release.addons if addon not in addons)
    procfile = read_app_file(build_dir, "Procfile")
    declared = parse_procfile(procfile) if procfile is not None else {}
    log("-----> Discovering process types")
    for line in _describe_types(declared, defaults):
        log(line)
    return BuildResult(names, {**defaults, **declared}, config_vars, tuple(addons))


def _describe_types(declared: dict[str, str], defaults: dict[str, str]) -> list[str]:
    """Heroku's lines, labels aligned when both kinds are shown."""
    rows = []
    if declared or not defaults:
        rows.append(("Procfile declares types", ", ".join(declared) or "(none)"))
    if defaults:
        rows.append(("Default types for buildpack", ", ".join(defaults)))
    width = max(len(label) for label, _ in rows) if len(rows) > 1 else 0
    return [f"       {label.ljust(width)} -> {types}" for label, types in rows]
