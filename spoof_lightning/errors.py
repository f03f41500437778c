"""The error of a config value that cannot work (a light module: run-directory code that
runs before anything heavy is imported raises it too). cli.py turns it into exit 2."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the config key."""
