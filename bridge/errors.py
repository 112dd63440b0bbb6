"""One exception root for the bus side."""


class BridgeError(Exception):
    """Base of every error raised by the bridge."""


class BadMessage(BridgeError):
    """An inbound message that cannot be read: its reason names the field and the bad value."""


class RecordingError(BridgeError):
    """A recorded-traffic file that cannot be read (names the file and line)."""
