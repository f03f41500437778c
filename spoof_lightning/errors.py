"""The error of a config value that cannot work (a light module: run-directory code that
runs before anything heavy is imported raises it too; cli.py turns it into exit 2), and how
an error message lists many names."""

from collections.abc import Sequence


class ConfigError(ValueError):
    """A config value that cannot work; the message names the config key."""


def listed(items: Sequence[str], limit: int = 5, separator: str = ", ") -> str:
    """The first ``limit`` of ``items`` joined, then ``... (N more)``: e.g. the keys of a
    checkpoint that do not fit, in one readable sentence."""
    more = f"{separator}... ({len(items) - limit} more)" if len(items) > limit else ""
    return separator.join(items[:limit]) + more
