"""Keeping the weights in RAM: whether a plan leaves room to lock them (`use_mlock`), whether this session's
RLIMIT_MEMLOCK allows it, and the one line said when decoding starts far below the predicted speed."""

from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass
from typing import Any

LOCK_HEADROOM = 0.9  # lock only when the plan uses at most this share of its RAM budget


@dataclass(frozen=True)
class LockStatus:
    """Whether the weights can be locked in RAM: room in the plan, and the memlock limit against their size."""

    needed: int  # bytes to lock (the GGUF's mapped size)
    limit: int | None  # RLIMIT_MEMLOCK in bytes; None: unlimited (or root, which may lock anyway)
    room: bool  # the plan leaves room for locked pages next to everything else
    in_use: bool = False

    @property
    def limit_ok(self) -> bool:
        """True when the memlock limit covers the weights."""
        return self.limit is None or self.limit >= self.needed

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "limit_ok": self.limit_ok}


def memlock_limit() -> int | None:
    """This process's RLIMIT_MEMLOCK in bytes (None: unlimited, or root with CAP_IPC_LOCK)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def raise_limit_hint(status: LockStatus) -> str:
    """What to do when the memlock limit is below the weights' size."""
    return (f"locking the weights needs a memlock limit of {_mb(status.needed)}, this session allows "
            f"{_mb(status.limit or 0)}: raise it with 'ulimit -l unlimited' in the shell that starts localr1 "
            "(or a memlock line in /etc/security/limits.conf, LimitMEMLOCK= for a service)")


def lock_advice(status: LockStatus) -> str:
    """What the user can do about weights that are not resident, as a clause."""
    if status.in_use:
        return "the weights are locked in RAM, so another busy program is the likely cause"
    if not status.room:
        return "this plan leaves no room to lock the weights in RAM: close other programs or use a smaller variant"
    if not status.limit_ok:
        return raise_limit_hint(status)
    return "--mlock (use_mlock = true in config.toml for the chat app) keeps them in RAM"


def slow_decoding_notice(measured_tps: float, predicted_tps: float, lock: LockStatus | None) -> str:
    """One line: decoding is far below the steady-state prediction, the likely causes, and the remedy."""
    text = (f"decoding at {measured_tps:.1f} tokens/s, under half the {predicted_tps:.1f} predicted for this "
            "machine: the weights are not all in RAM yet (a cold cache right after a download or quantize, or "
            "memory pressure) or another program is using the CPU")
    return text + ("; " + lock_advice(lock) if lock is not None else "")


def lock_status_from(facts: dict[str, Any] | None) -> LockStatus | None:
    """The LockStatus an engine's describe()['plan'] carries, if any."""
    raw = (facts or {}).get("mlock")
    if not isinstance(raw, dict):
        return None
    try:
        return LockStatus(needed=int(raw["needed"]), limit=raw["limit"], room=bool(raw["room"]),
                          in_use=bool(raw["in_use"]))
    except (KeyError, TypeError, ValueError):
        return None
