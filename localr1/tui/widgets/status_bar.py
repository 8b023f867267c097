"""The bottom bar: model, quant, context used, speed, time to first token, memory."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from localr1.plaintext import printable


def _k(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


class StatusBar(Horizontal):
    """Live facts about the model and the machine; all plain text (model names come from files)."""

    def __init__(self) -> None:
        super().__init__(id="status-bar")
        self.model_label = Static("no model", id="status-model", markup=False)
        self.context_bar = ProgressBar(total=1, show_eta=False, show_percentage=False, id="status-context")
        self.context_label = Static("", id="status-context-label", markup=False)
        self.speed_label = Static("", id="status-speed", markup=False)
        self.memory_label = Static("", id="status-memory", markup=False)
        self._texts: dict[str, str] = {}  # what each label shows now, by id

    def _show(self, label: Static, text: str) -> None:
        """Repaint a label; lay the screen out again only when its width changes.

        The speed and memory figures change every tick while an answer streams, and a layout of the
        whole screen costs the UI thread (and so the model, which waits for its GIL) far more than a repaint.
        """
        key = label.id or ""
        old = self._texts.get(key, "")
        if text == old:
            return
        self._texts[key] = text
        label.update(text, layout=cell_len(text) != cell_len(old))

    def compose(self) -> ComposeResult:
        yield self.model_label
        yield self.context_bar
        yield self.context_label
        yield self.speed_label
        yield self.memory_label

    def set_model(self, text: str) -> None:
        """Model name and quant type (or a loading/error note); escape sequences from the file shown, not sent."""
        self._show(self.model_label, printable(text, limit=200))

    def set_context(self, used: int, total: int) -> None:
        """Context used out of total, as a bar and a label."""
        self.context_bar.update(total=max(total, 1), progress=min(used, total))
        self._show(self.context_label, f"ctx {_k(used)}/{_k(total)}")

    def set_speed(self, tokens_per_s: float, ttft_s: float | None) -> None:
        """Live decode speed and the last time to first token."""
        ttft = f"  ttft {ttft_s:.2f}s" if ttft_s is not None else ""
        self._show(self.speed_label, f"{tokens_per_s:.1f} tok/s{ttft}")

    def set_memory(self, rss_bytes: int, gpu_bytes: int | None) -> None:
        """Process RAM, and GPU memory when the model is offloaded."""
        gpu = f"  GPU {gpu_bytes / 2**20:.0f} MiB" if gpu_bytes is not None else ""
        self._show(self.memory_label, f"RAM {rss_bytes / 2**20:.0f} MiB{gpu}")
