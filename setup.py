"""Records the commit being built into the package, for `ouro version`."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCommit(build_py):
    def run(self) -> None:
        super().run()
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "--short=7", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return
        target = Path(self.build_lib) / "runtime" / "COMMIT"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(sha + "\n")


setup(cmdclass={"build_py": BuildWithCommit})
