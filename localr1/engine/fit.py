"""Where to cut the oldest turns of a conversation that no longer fits, so the KV cache stays useful.

Dropping the oldest exchange whenever the prompt is too long changes the prompt's start at every
turn, and then llama.cpp must evaluate almost the whole prompt again each turn. Instead the
conversation may only be cut at a few fixed points, one per `block` tokens of history (about half
the room in the context), and the earliest cut that fits is used. The points depend only on the
messages before them, so they do not move as the conversation grows: the same cut is kept turn
after turn (the prompt's start stays the same and the cache is reused) until the rest no longer
fits, and then a whole block goes at once, leaving room for several more turns.
"""

from __future__ import annotations

from collections.abc import Sequence

from localr1.engine.template import Role


def cut_points(costs: Sequence[int], roles: Sequence[Role], block: int) -> list[int]:
    """Indices a conversation may start at after trimming, in increasing order.

    `costs[i]` estimates message i's tokens and must depend on that message alone. A point is the
    first user message after the running cost passes another multiple of `block`; the last user
    message is always a point, the last resort.
    """
    if block <= 0:
        raise ValueError("block must be positive")
    points: list[int] = []
    running = 0
    blocks_passed = 0
    for index, (cost, role) in enumerate(zip(costs, roles, strict=True)):
        if index > 0 and role == "user" and running // block > blocks_passed:
            points.append(index)
            blocks_passed = running // block
        running += cost
    last_user = max((i for i, role in enumerate(roles) if role == "user"), default=0)
    if last_user > 0 and (not points or points[-1] < last_user):
        points.append(last_user)
    return points
