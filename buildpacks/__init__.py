"""Heroku-compatible buildpacks: the runner and the built-in buildpacks.

``compile_slug`` runs ``bin/detect``, ``bin/compile`` and ``bin/release`` of
each selected buildpack over a checked-out app; ``parse_procfile`` reads a
Procfile. Every failure is a ``BuildError`` with a one-line message.
"""

from buildpacks.compiler import BuildResult, compile_slug
from buildpacks.errors import BuildError
from buildpacks.procfile import parse_procfile

__all__ = ["BuildError", "BuildResult", "compile_slug", "parse_procfile"]
