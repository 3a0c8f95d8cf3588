"""The managed cluster under `OURO_HOME/postgres`: made once by `initdb`, then
run by the supervisor as process `postgres` of app `ouro`, as a non-root user.

Apps connect over TCP on 127.0.0.1 with scram-sha-256; the platform connects as
the superuser `postgres` over a Unix socket in `run/`, a directory only root and
the server's user can enter (peer authentication, mapped in `pg_ident.conf`).
`cluster.json` is written last: a cluster without it is an unfinished `initdb`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from addons.errors import ServerError
from addons.interface import Log
from addons.postgres.binaries import find_bin_dir
from runtime.plan import free_port
from runtime.users import APPS_GID, AppUser, needs_drop

SUPERUSER = "postgres"
#: the account the server runs as when the platform is root (Debian's, or made here)
SERVER_ACCOUNT = "postgres"
INITDB_TIMEOUT = 300.0


@dataclass(frozen=True)
class Cluster:
    root: Path
    bin_dir: Path
    port: int
    #: the Unix account that owns the data and runs the server ("": the platform's)
    os_user: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def command(self) -> str:
        """The server's argv as shell words (the supervisor splits them; no shell runs)."""
        return shlex.join([str(self.bin_dir / "postgres"), "-D", str(self.data_dir)])

    def user(self) -> AppUser | None:
        if not self.os_user:
            return None
        entry = pwd.getpwnam(self.os_user)
        # The apps' group may pass through the directories above OURO_HOME.
        return AppUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (APPS_GID,))

    def admin_conninfo(self) -> dict[str, str | int]:
        return {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": SUPERUSER,
            "dbname": "postgres",
        }


def cluster_root(home: Path) -> Path:
    # The platform's processes run `python -P`, so this directory cannot shadow
    # the package `addons` even though their working directory is OURO_HOME.
    return home / "addons" / "postgres"


def load(home: Path) -> Cluster | None:
    """The cluster made by `create`, or None when there is none (yet)."""
    root = cluster_root(home)
    try:
        state = json.loads((root / "cluster.json").read_text())
    except FileNotFoundError:
        return None
    return Cluster(root, Path(state["bin_dir"]), int(state["port"]), state["os_user"])


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Serialises `initdb` between concurrent `addons:create` (threads or processes)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".postgres.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create(home: Path, log: Log) -> Cluster:
    """`initdb` a new cluster, configure it and record it. Idempotent under `locked`."""
    existing = load(home)
    if existing is not None:
        return existing
    bin_dir = find_bin_dir()
    user = _server_user()
    root = cluster_root(home)
    cluster = Cluster(root, bin_dir, free_port(), user.name if user else "")
    log("Creating the platform's Postgres cluster (initdb)...")
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    root.chmod(0o711)  # the server's user passes through, sees nothing else
    for leftover in (cluster.data_dir, cluster.socket_dir):
        shutil.rmtree(leftover, ignore_errors=True)  # an initdb that did not finish
    for folder in (cluster.data_dir, cluster.socket_dir):
        folder.mkdir(mode=0o700)
        if user is not None:
            os.chown(folder, user.uid, user.gid)
    _initdb(cluster, user)
    _configure(cluster, user)
    state = asdict(cluster) | {"root": str(root), "bin_dir": str(bin_dir)}
    tmp = root / "cluster.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(root / "cluster.json")
    return cluster


def _server_user() -> AppUser | None:
    """Postgres refuses to run as root: when the platform is root, use (or make) an account."""
    if not needs_drop():
        return None
    if not _account_exists(SERVER_ACCOUNT):
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ServerError(f"no {SERVER_ACCOUNT} user and no useradd to make one") from None
        made = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if made.returncode != 0:
            raise ServerError(f"cannot create the {SERVER_ACCOUNT} user: {made.stderr.strip()}")
    entry = pwd.getpwnam(SERVER_ACCOUNT)
    return AppUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (APPS_GID,))


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _initdb(cluster: Cluster, user: AppUser | None) -> None:
    argv = [
        str(cluster.bin_dir / "initdb"), "-D", str(cluster.data_dir), "-U", SUPERUSER,
        "-E", "UTF8", "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv,
            cwd=cluster.root,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C"},
            capture_output=True,
            text=True,
            timeout=INITDB_TIMEOUT,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=list(user.groups) if user else None,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServerError(f"initdb could not run: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServerError(f"initdb failed (exit status {done.returncode}): {last}")


def _configure(cluster: Cluster, user: AppUser | None) -> None:
    platform_user = pwd.getpwuid(os.geteuid()).pw_name
    server_user = user.name if user else platform_user
    data = cluster.data_dir
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(cluster.port),
        "unix_socket_directories": str(cluster.socket_dir),
        "unix_socket_permissions": "0700",
        "password_encryption": "scram-sha-256",
        "logging_collector": "off",
    }
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\n# Ouro: the managed cluster\n")
        for name, value in settings.items():
            conf.write(f"{name} = '{_conf_quote(value)}'\n")
    (data / "pg_hba.conf").write_text(
        "# Ouro: the platform as superuser over its private socket, apps over TCP\n"
        f"local all {SUPERUSER} peer map=ouro\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n"
    )
    (data / "pg_ident.conf").write_text(
        "".join(f"ouro {name} {SUPERUSER}\n" for name in sorted({platform_user, server_user}))
    )
    if user is not None:
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            os.chown(data / name, user.uid, user.gid)


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")
