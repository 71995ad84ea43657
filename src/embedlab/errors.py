"""User-facing errors: the CLI turns these into exit code 2 and a message, never a traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad config, missing or malformed data, bad arguments)."""


class DatasetError(UserError):
    """Missing, malformed or unverifiable dataset files. The message names the file (and line)."""
