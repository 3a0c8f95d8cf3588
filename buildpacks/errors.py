"""The buildpack runner's one exception: every failure the user must read."""

from __future__ import annotations


class BuildError(Exception):
    """A build cannot go on; the message is one line, shown to the user as is.

    Raised for: no buildpack detecting the app, an unknown built-in name, a
    buildpack path that does not exist, a buildpack without an executable
    ``bin/compile``, a buildpack URL that cannot be fetched, a compile that
    exits non-zero or exceeds its timeout, malformed ``bin/release`` output and
    a malformed Procfile.
    """
