"""The error raised for bad configs and bad data: entry points print its message
(naming the file or field and what was expected) instead of a traceback."""


class MeritInputError(ValueError):
    """A config, data directory or audio file is not what MERIT expects."""
