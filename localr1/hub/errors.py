"""What can go wrong talking to the Hub, as one-line user errors."""

from __future__ import annotations

from localr1.errors import LocalR1Error


class HubError(LocalR1Error):
    """The Hub refused a request or answered something unusable (unknown repo or file, server error)."""


class OfflineError(HubError):
    """Offline mode is on, or the Hub cannot be reached."""


class HubTimeoutError(HubError):
    """The Hub did not answer in time."""


class ChecksumError(HubError):
    """A downloaded file does not match the hash the Hub published for it."""


class NotEnoughSpaceError(HubError):
    """The download would not fit on the disk holding the Hub cache."""
