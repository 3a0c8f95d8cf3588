"""Benchmark the Postgres add-on and the scheduler on a real platform.

    python bench/postgres.py [--megabytes 200] [--samples 5]

Measures, against one `ouro up` in a temporary home (driven over real ssh):
- provisioning: `addons:create postgres` once the server runs (target < 1 s);
- backup and restore throughput of a database of about `--megabytes` MB:
  `pg:backups:capture` / `pg:backups:restore` against `pg_dump -Fc` /
  `pg_restore` run by hand on the same server with the same options (target:
  within 1.1x);
- a scheduled job's start latency against its due time (target < 1 s): a cron
  job every 2 s (OURO_CRON_SECONDS) prints `time.time()` as its first act.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from addons.postgres.backups import tool_env  # noqa: E402
from addons.postgres.binaries import find_bin_dir  # noqa: E402
from tests.conftest import start_platform  # noqa: E402
from tests.harness import Platform, SshKey, make_key, make_repo, wait_for  # noqa: E402

WEB = "web: python3 -m http.server $PORT --bind 127.0.0.1\n"
ROW_BYTES = 140  # three md5 strings and the tuple's overhead, roughly


def ssh(platform: Platform, key: SshKey, line: str) -> str:
    result = platform.ssh_raw(key, line, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"`{line}` failed: {result.stderr.strip()}")
    return result.stdout


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def database_url(platform: Platform, key: SshKey, app: str) -> str:
    return ssh(platform, key, f"config:get DATABASE_URL -a {app}").strip()


def provisioning(platform: Platform, key: SshKey, samples: int) -> None:
    first = timed(lambda: ssh(platform, key, "addons:create postgres -a bench-0"))
    times = []
    for i in range(1, samples + 1):
        ssh(platform, key, f"apps:create bench-{i}")
        times.append(timed(lambda i=i: ssh(platform, key, f"addons:create postgres -a bench-{i}")))
    print(f"provisioning: first (initdb + server start) {first:.2f} s")
    print(
        f"provisioning: server running, median {statistics.median(times):.3f} s,"
        f" max {max(times):.3f} s over {samples} (target < 1 s, ssh round trip included)"
    )


def fill(url: str, psql: Path, megabytes: int) -> int:
    rows = megabytes * 1_000_000 // ROW_BYTES
    statement = (
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text)"
        f" || md5((g * 13)::text) AS payload FROM generate_series(1, {rows}) g;"
        " SELECT pg_database_size(current_database());"
    )
    out = subprocess.run(
        [str(psql), "-X", "-A", "-t", "-c", statement],
        env=tool_env(url), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def backups(platform: Platform, key: SshKey, megabytes: int, work: Path) -> None:
    app = "bench-big"
    repo = make_repo(work / app, {"Procfile": WEB, "index.html": "ok\n"})
    platform.git(key, "push", platform.url(app), "main", cwd=repo)
    ssh(platform, key, f"addons:create postgres -a {app}")
    url = database_url(platform, key, app)
    bin_dir = find_bin_dir()
    size = fill(url, bin_dir / "psql", megabytes)
    mb = size / 1e6
    env = tool_env(url)
    dump = work / "by-hand.dump"
    by_hand = timed(
        lambda: subprocess.run(
            [str(bin_dir / "pg_dump"), "-Fc", "--no-password", "-f", str(dump)], env=env, check=True
        )
    )
    ours = timed(lambda: ssh(platform, key, f"pg:backups:capture -a {app}"))
    restore_argv = [
        str(bin_dir / "pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-acl",
        "--single-transaction", "--exit-on-error", "--no-password", "-d", env["PGDATABASE"],
        str(dump),
    ]  # fmt: skip
    restore_by_hand = timed(lambda: subprocess.run(restore_argv, env=env, check=True))
    restore_ours = timed(lambda: ssh(platform, key, f"pg:backups:restore -a {app} --confirm {app}"))
    print(f"database: {mb:.0f} MB, dump {dump.stat().st_size / 1e6:.0f} MB")
    for name, hand, mine in (
        ("backup", by_hand, ours),
        ("restore", restore_by_hand, restore_ours),
    ):
        print(
            f"{name}: by hand {mb / hand:.1f} MB/s ({hand:.2f} s), ouro {mb / mine:.1f} MB/s"
            f" ({mine:.2f} s): {mine / hand:.2f}x (target <= 1.1x)"
        )


def latency(platform: Platform, key: SshKey, samples: int, work: Path) -> None:
    app = "bench-cron"
    repo = make_repo(work / app, {"Procfile": WEB, "index.html": "ok\n"})
    platform.git(key, "push", platform.url(app), "main", cwd=repo)
    command = "python3 -c " + shlex.quote('import time; print("started=%.6f" % time.time())')
    ssh(platform, key, f"cron:add -a {app} '*/2 * * * * *' {command}")
    pattern = re.compile(r"started=(\d+\.\d+)")

    def starts() -> list[float]:
        return [float(m) for m in pattern.findall(ssh(platform, key, f"logs -a {app} -n 1500"))]

    wait_for(lambda: len(starts()) >= samples, timeout=samples * 2 + 30, what="cron runs")
    # Due times are the even seconds: the delay is past the last one.
    delays = [t - (int(t) - int(t) % 2) for t in starts()[:samples]]
    print(
        f"cron start latency: median {statistics.median(delays) * 1000:.0f} ms,"
        f" max {max(delays) * 1000:.0f} ms over {len(delays)} runs (target < 1 s;"
        " the job's own python start included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ouro-bench-pg-") as tmp:
        root = Path(tmp)
        keys = {name: make_key(root, name) for name in ("admin", "bob", "carol")}
        settings = {"OURO_CRON_SECONDS": "1", "OURO_GRACE_PERIOD": "5"}
        platform = start_platform(root / "platform", keys, settings)
        try:
            admin = keys["admin"]
            ssh(platform, admin, "apps:create bench-0")
            provisioning(platform, admin, args.samples)
            latency(platform, admin, args.samples, root)
            backups(platform, admin, args.megabytes, root)
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
