"""Which engine the chat uses: the loaded one, the one being loaded, and those replaced mid-answer."""

from __future__ import annotations

from localr1.engine.port import ChatEngine


class ModelSlot:
    """The app's model state, shared with the chat controller (which only reads it and retires engines)."""

    def __init__(self) -> None:
        self.engine: ChatEngine | None = None
        self.loading: str | None = None
        self.retired: list[ChatEngine] = []
        self._seq = 0

    def begin_load(self, model: str) -> int:
        """Note a new load; returns its sequence number (a later load supersedes it)."""
        self._seq += 1
        self.loading = model
        return self._seq

    def is_current(self, seq: int) -> bool:
        """False when a later load was started after this one."""
        return seq == self._seq

    def swap(self, engine: ChatEngine, *, in_use: bool) -> None:
        """Make `engine` the current one; the old one is closed now, or later when `in_use`."""
        old, self.engine, self.loading = self.engine, engine, None
        if old is not None:
            if in_use:
                self.retired.append(old)  # still decoding: closed when the answer ends
            else:
                old.close()

    def close_retired(self) -> None:
        """Free engines that were replaced while an answer still used them."""
        while self.retired:
            self.retired.pop().close()
