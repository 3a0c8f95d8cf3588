"""Move a copied virtualenv to a new build: relocate.py OLD_BUILD_DIR NEW_BUILD_DIR.

The virtualenv is BUILD_DIR/.venv. It records absolute paths (its own, and
the app's for an editable install) in its scripts' shebangs, its
activate scripts, pyvenv.cfg and the .pth / editable-finder files at the top
of site-packages. Only those places are rewritten, so the cost does not grow
with the number of installed packages. Kept to Python 3.7 features: it runs
under whichever interpreter the app asked for.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Iterator


def places(venv: str) -> Iterator[str]:
    yield os.path.join(venv, "pyvenv.cfg")
    for path in glob.glob(os.path.join(venv, "bin", "*")):
        yield path
    for site in glob.glob(os.path.join(venv, "lib", "python*", "site-packages")):
        for path in glob.glob(os.path.join(site, "*")):
            yield path
        for path in glob.glob(os.path.join(site, "*.dist-info", "direct_url.json")):
            yield path


def rewrite(path: str, old: bytes, new: bytes) -> None:
    """Replace the old directory where it is a whole path or a path's prefix."""
    if os.path.islink(path) or not os.path.isfile(path):
        return
    with open(path, "rb") as source:
        data = source.read()
    if old not in data or b"\0" in data:
        return
    pattern = re.escape(old) + rb"(?=[/'\"\s]|$)"
    partial = path + ".relocating"
    with open(partial, "wb") as target:
        target.write(re.sub(pattern, lambda _: new, data))
    os.chmod(partial, os.stat(path).st_mode & 0o7777)
    os.replace(partial, path)


def main() -> None:
    old = os.path.abspath(sys.argv[1]).encode()
    new = os.path.abspath(sys.argv[2]).encode()
    for path in places(os.path.join(sys.argv[2], ".venv")):
        rewrite(path, old, new)


if __name__ == "__main__":
    main()
