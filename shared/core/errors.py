"""Error kinds every layer agrees on: retrying helps (transient) or it cannot (permanent)."""


class FootprintError(Exception):
    """Base of every error Footprint raises on purpose."""


class PermanentError(FootprintError):
    """The input itself is wrong: retrying the same file at the same ETag cannot help."""


class TransientError(FootprintError):
    """A dependency failed (storage unavailable, throttled): the same work may succeed later."""


class StorageFull(TransientError):
    """The store has no room left (a full disk): no file can land until space is freed."""


class ConfigError(FootprintError):
    """The configuration file is invalid; the message names the offending field."""


class NotFound(FootprintError):
    """A requested record or file does not exist."""


class BadRequest(FootprintError):
    """A caller's argument is invalid (CLI option, HTTP query parameter)."""
