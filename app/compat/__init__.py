"""Where agentd relies on a library's private names: one module per library.

Each module here reaches into one library's internals for a saving that a
performance bar of the service needs (bench/README.md, "Targets"), and nothing
else in `app` does. Each declares the versions it was written and tested
against; outside them it falls back to the library's public API (slower, never
wrong) and says so once in the log, and its test in tests/compat fails until
someone checks the new version and widens the range. This package imports no
other `app` package: it is the lowest layer.
"""

from __future__ import annotations

import logging
import re
from importlib import metadata

log = logging.getLogger("agentd.compat")


def version_tuple(version: str) -> tuple[int, ...]:
    """The release numbers of a version string: "2.1.9" -> (2, 1, 9), "3.14.0rc1" -> (3, 14, 0)."""
    release = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in release.group().split(".")) if release else ()


def supported(distribution: str, at_least: str, below: str, *, what: str) -> bool:
    """Whether the installed `distribution` is within [at_least, below), the versions
    `what` (a private name we rely on) was checked against; when not, a warning
    that `what` falls back to the public API."""
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    if version_tuple(at_least) <= version_tuple(installed) < version_tuple(below):
        return True
    log.warning(
        "%s %s is outside %s..%s, the versions %s was checked against: using the public API",
        distribution,
        installed,
        at_least,
        below,
        what,
    )
    return False
