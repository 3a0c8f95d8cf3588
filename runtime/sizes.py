"""Sizes as people read them: `12.3 MB` in command output, `12.3M` in build output."""

from __future__ import annotations

import os
from pathlib import Path


def tree_size(root: Path) -> int:
    """Bytes of the regular files under `root` (links not followed); 0 when it is gone."""
    total = 0
    for parent, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:
                continue
    return total


def human_size(size: int, compact: bool = False) -> str:
    """`12.3 MB`, or Heroku's build-output `12.3M` when `compact`."""
    units = ("B", "K", "M", "G") if compact else ("B", "KB", "MB", "GB")
    sep = "" if compact else " "
    if size < 1024:
        return f"{size}{sep}{units[0]}"
    value = size / 1024
    for unit in units[1:-1]:
        if value < 1024:
            return f"{value:.1f}{sep}{unit}"
        value /= 1024
    return f"{value:.1f}{sep}{units[-1]}"
