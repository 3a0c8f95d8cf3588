"""The `ouro` command, run on the platform's host by its owner.

`ouro up` runs the platform in the foreground; the other commands work on
`OURO_HOME` directly, whether or not the platform is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runtime.control import ControlError, request
from runtime.keys import register_key
from runtime.settings import Settings, SettingsError
from runtime.status import describe
from runtime.store import Conflict, Store

#: what `ouro check` imports: every platform process's entry point
CHECKED_MODULES = (
    "runtime.supervisor",
    "runtime.ops",
    "gitd.server",
    "gitd.commands",
    "hooks.pipeline",
    "runtime.router.server",
    "addons.scheduler.service",
)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.supervisor import Supervisor

    resume = Path(args.resume) if args.resume else None
    if resume is None and _running(settings) is not None:
        print(f"ouro: already running at {settings.home}", file=sys.stderr)
        return 1
    if resume is None:
        _run_current_release(settings)
    supervisor = Supervisor(settings)
    try:
        import uvloop

        return uvloop.run(supervisor.run(resume))
    except OSError as e:
        print(f"ouro: {e.strerror or e}", file=sys.stderr)
        return 1


def _run_current_release(settings: Settings) -> None:
    """Exec the code of app `ouro`'s current release when it is not this one: the
    platform always starts from the release it was upgraded to (DESIGN §4)."""
    from runtime.names import SYSTEM_APP
    from runtime.selfhost import BOOTSTRAP_PYTHON, PlatformCode

    os.environ.setdefault(BOOTSTRAP_PYTHON, sys.executable)
    if not settings.db_path.exists():
        return
    store = Store(settings.db_path)
    try:
        code = PlatformCode.of(store.current_release(SYSTEM_APP), settings)
    finally:
        store.close()
    if code.slug_dir is None or code.python == sys.executable:
        return
    if not os.access(code.python, os.X_OK):
        print(f"ouro: {code.python} is missing: starting from the installed code",
              file=sys.stderr)  # fmt: skip
        return
    argv = code.command(*sys.argv[1:])
    os.execve(code.python, argv, code.environ(dict(os.environ)))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    """This code can run the platform: what a release of `ouro` must pass before any
    of its processes starts (a supervisor execs into it only then)."""
    import importlib

    from runtime.version import version_string

    for module in CHECKED_MODULES:
        importlib.import_module(module)
    print(version_string())
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    answer = _running(settings)
    if answer is None:
        print(f"ouro is not running at {settings.home}", file=sys.stderr)
        return 1
    print(describe(answer, settings))
    return 0


def _keys_add(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.pubkey_file)
    try:
        text = sys.stdin.read() if args.pubkey_file == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        print(f"ouro: cannot read {path}: {e}", file=sys.stderr)
        return 1
    name = args.name or _default_key_name(text, path)
    store = Store(settings.db_path)
    try:
        fingerprint = register_key(store, name, text, admin=args.admin)
        admin = store.key(name).admin
    except (ValueError, Conflict) as e:
        print(f"ouro: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    role = "admin" if admin else "user"
    print(f"Added key {name} ({role}) {fingerprint}")
    return 0


def _local(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.local import LocalError, run_local

    try:
        return run_local(Path(args.procfile), Path(args.env), args.types, args.port)
    except LocalError as e:
        print(f"ouro: {e}", file=sys.stderr)
        return 1


def _default_key_name(text: str, path: Path) -> str:
    """The key's comment without its host (`alice@laptop` -> `alice`), else the user."""
    fields = text.split()
    comment = fields[2] if len(fields) > 2 else ""
    name = comment.split("@")[0] if comment else ""
    return name or os.environ.get("USER", "") or path.stem


def _running(settings: Settings) -> dict[str, object] | None:
    """The supervisor's status answer, or None when no platform runs at this home."""
    try:
        status = json.loads(settings.status_file.read_text())
    except (OSError, ValueError):
        return None
    try:
        answer = request(settings.control_socket, "status", timeout=5.0)
    except ControlError:
        return None
    answer.setdefault("pid", status.get("pid"))
    return answer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ouro", description="A platform that runs itself.")
    parser.add_argument("--home", help="state directory (OURO_HOME, default ~/.ouro)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the platform in the foreground")
    up.add_argument("--bind", help="bind address (OURO_BIND, default 127.0.0.1)")
    up.add_argument("--ssh-port", help="SSH port (OURO_SSH_PORT, default 2222)")
    up.add_argument("--http-port", help="HTTP port (OURO_HTTP_PORT, default 8080)")
    up.add_argument("--domain", help="app domain (OURO_DOMAIN, default localhost)")
    # the supervisor re-executing itself (SIGUSR2) passes its state here
    up.add_argument("--resume", help=argparse.SUPPRESS)
    up.set_defaults(run=_up)

    # a release of the platform's pre-flight check (runtime.selfhost)
    check = sub.add_parser("check")
    check.set_defaults(run=_check)

    status = sub.add_parser("status", help="exit 0 and describe the platform when it is up")
    status.set_defaults(run=_status)

    keys = sub.add_parser("keys:add", help="register an SSH public key (the first is admin)")
    keys.add_argument("--name", help="the key's name (default: from its comment)")
    keys.add_argument("--admin", action="store_true", help="the key may do anything")
    keys.add_argument("pubkey_file", metavar="PUBKEY_FILE", help="the public key file, or -")
    keys.set_defaults(run=_keys_add)

    local = sub.add_parser("local", help="run an app's Procfile here, like `heroku local`")
    local.add_argument("-f", "--procfile", default="Procfile", help="default: ./Procfile")
    local.add_argument("-e", "--env", default=".env", help="default: ./.env")
    local.add_argument("-p", "--port", type=int, default=5000, help="first PORT (default 5000)")
    local.add_argument("types", nargs="*", metavar="TYPE", help="process types (default: all)")
    local.set_defaults(run=_local)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {
        "home": args.home,
        "bind": getattr(args, "bind", None),
        "ssh_port": getattr(args, "ssh_port", None),
        "http_port": getattr(args, "http_port", None),
        "domain": getattr(args, "domain", None),
    }
    try:
        settings = Settings.load(**flags)
    except SettingsError as e:
        print(f"ouro: {e}", file=sys.stderr)
        return 2
    status: int = args.run(args, settings)
    return status


if __name__ == "__main__":
    sys.exit(main())
