"""The one exception type that the CLI turns into a one-line message and exit code 2."""


class HivethinkError(Exception):
    """Bad input or an unusable resource (model file, config, argument). Message is user-facing."""
