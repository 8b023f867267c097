"""What an empty chat shows: the model loaded, how to get an R1 model, and the keys that matter."""

from __future__ import annotations

from typing import Any

from textual.widgets import Markdown

from localr1.plaintext import printable

GET_R1 = (
    "To run an R1 model, let the planner pick the distill and quant that suit this machine and download it\n"
    "(or point at a GGUF you already have, from LM Studio, Ollama or the Hugging Face cache):\n\n"
    "```\n"
    "localr1 pull r1\n"
    "localr1 chat --model r1-qwen-7b\n"
    "```"
)
KEYS = ("**Enter** send · **Esc** stop · **F5** answer now (ends the thinking) · "
        "**F4** settings (thinking budget, loop guard, preset) · **F1** every key")


def _plain(text: str) -> str:
    """Model names come from files: every Markdown character shown as itself, escape sequences shown, not sent."""
    shown = printable(" ".join(text.split()), limit=200)
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~" else c for c in shown)


def welcome_text(facts: dict[str, Any] | None) -> str:
    """The welcome's Markdown for a loaded model's describe() facts (None while loading)."""
    if facts is None:
        lines = ["### Welcome to localr1", "Loading the model…"]
    else:
        name = _plain(str(facts.get("display_name") or facts.get("model") or "an unnamed model"))
        quant = f" ({_plain(str(facts['quant']))})" if facts.get("quant") else ""
        lines = ["### Welcome to localr1", f"Loaded: **{name}**{quant}."]
        if facts.get("reasoning"):
            lines.append("It is a reasoning model: it thinks first (shown folded above each answer), then answers.")
        else:
            lines.append("It is a small chat model that does not reason: fine to try the app, not to rely on. "
                         "The thinking controls do nothing for it; the loop guard still watches its answers.")
            lines.append(GET_R1)
        speed = facts.get("predicted_tokens_per_s")
        if isinstance(speed, int | float) and speed > 0:
            lines.append(f"Expected speed on this machine: about {speed:.0f} tokens/s.")
    lines.append(KEYS)
    return "\n\n".join(lines)


class Welcome(Markdown):
    """Shown in an empty conversation; the first message replaces it."""

    def __init__(self, facts: dict[str, Any] | None = None) -> None:
        super().__init__(welcome_text(facts), id="welcome")

    async def show_model(self, facts: dict[str, Any] | None) -> None:
        """Update for the model now loaded."""
        await self.update(welcome_text(facts))
