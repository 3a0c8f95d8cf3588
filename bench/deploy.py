"""Deploy speed: `git push` of a small Python app to "Launching... done" and to the
new code answering through the router, under a request loop.

    python bench/deploy.py [--runs N]

Starts a platform in a temporary home on free ports, pushes a one-dependency
Python app once (cold cache), then code-only changes (warm), and prints each
push's time, the pipeline's stages (from the app's `Build vN stages` log
line), the time until the router serves the new code and the requests that
failed meanwhile. Targets (issues 3 and 4): warm push under 1.2 s, the
pipeline's own overhead (all but compile) under 300 ms, new code answering
within 1.5 s with no failed request.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import (  # noqa: E402
    GRACEFUL_SERVER,
    Platform,
    RequestLoop,
    SshKey,
    commit,
    make_key,
    make_repo,
)

APP = "benchapp"
#: the graceful web server of the tests (it drains on SIGTERM), with a dependency
SERVER = "import six\n" + GRACEFUL_SERVER


def timed_push(
    platform: Platform, key: SshKey, repo: Path
) -> tuple[float, float | None, list[str]]:
    """(seconds to the push's end, seconds to "Launching... done", remote lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_SSH_COMMAND=" ".join(platform.ssh_command(key)), HOME=str(platform.work))
    started = time.monotonic()
    proc = subprocess.Popen(
        ["git", "push", platform.url(APP), "main"],
        cwd=repo,
        env=env,
        text=True,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    launched = None
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line.rstrip())
        if "Launching... done" in line and launched is None:
            launched = time.monotonic() - started
    if proc.wait() != 0:
        raise SystemExit("push failed:\n" + "\n".join(lines))
    return time.monotonic() - started, launched, lines


def stages(platform: Platform, version: int) -> dict[str, float]:
    log = (platform.home / "logs" / APP / f"{APP}.log").read_text()
    match = re.search(rf"Build v{version} stages: (.*)", log)
    if not match:
        return {}
    timings = {}
    for part in match.group(1).split(", "):
        name, _, ms = part.rpartition(" ")
        timings[name] = float(ms.removesuffix("ms")) / 1000
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm pushes (default 5)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ouro-bench-deploy-"))
    os.chmod(root, 0o755)
    platform = Platform(root / "home", root / "work")
    (root / "work").mkdir()
    try:
        key = make_key(root, "bench")
        platform.ouro("keys:add", "--name", "bench", str(key.public))
        platform.start()
        repo = make_repo(
            root / "app",
            {
                "requirements.txt": "six\n",
                "app.py": SERVER.format(version="v1"),
                "Procfile": "web: python app.py\n",
            },
        )
        cold, cold_launch, _ = timed_push(platform, key, repo)
        rows = []
        with RequestLoop(platform.http_port, f"{APP}.localhost") as loop:
            for run in range(args.runs):
                version = f"v{run + 2}"
                commit(repo, {"app.py": SERVER.format(version=version)}, version)
                started = time.monotonic()
                total, launched, _ = timed_push(platform, key, repo)
                deadline = time.monotonic() + 30
                while version not in loop.first_seen and time.monotonic() < deadline:
                    time.sleep(0.005)
                serving = loop.first_seen.get(version, float("nan")) - started
                launch = launched if launched is not None else float("nan")
                rows.append((total, launch, serving, stages(platform, run + 2)))
        report(cold, cold_launch, rows, loop)
    finally:
        platform.stop(signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


def row(figure: str, value: str, target: str = "") -> None:
    print(f"{figure:<44}{value:>12}{target:>12}")


def report(
    cold: float,
    cold_launch: float | None,
    rows: list[tuple[float, float, float, dict[str, float]]],
    loop: RequestLoop,
) -> None:
    med = statistics.median
    row("figure", "median", "target")
    row("cold push (empty cache), total", f"{cold:.2f}s")
    row("cold push to Launching... done", f"{cold_launch or float('nan'):.2f}s")
    row("warm push to Launching... done", f"{med(r[1] for r in rows):.2f}s", "< 1.20s")
    row("warm push, total (git exits)", f"{med(r[0] for r in rows):.2f}s")
    row("push to new code answering via router", f"{med(r[2] for r in rows):.2f}s", "< 1.50s")
    for name in rows[-1][3]:
        row(f"  stage: {name}", f"{med(r[3].get(name, 0) for r in rows) * 1000:.0f}ms")
    overhead = med(sum(v for k, v in r[3].items() if k != "build") for r in rows)
    row("pipeline overhead (all stages but build)", f"{overhead * 1000:.0f}ms", "< 300ms")
    counts = f"{len(loop.bodies)} / {len(loop.failures)}"
    row("requests during the pushes: ok / failed", counts, "0 failed")
    for failure in loop.failures[:5]:
        print(f"  failed: {failure}")
    print(f"({len(rows)} warm runs)")


if __name__ == "__main__":
    main()
