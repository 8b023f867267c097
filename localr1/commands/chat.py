"""`localr1 chat`: the terminal chat app."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from localr1.errors import ConfigError
from localr1.settings import Settings, load_settings


def chat_command(args: argparse.Namespace) -> int:
    """Open the TUI; a broken settings file is reported in the app and defaults are used."""
    from localr1.engine.params import LoadRequest
    from localr1.engine.port import ChatEngine
    from localr1.loader import open_engine
    from localr1.store import ConversationStore
    from localr1.tui.app import LocalR1App
    from localr1.tui.termination import TERMINATED

    notices: list[str] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        settings = Settings()
        notices.append(f"{exc}; using defaults for now")
    if args.model:
        settings = replace(settings, model=args.model)
    if args.ctx:
        settings = replace(settings, context_size=args.ctx)
    workers = tuple(args.workers) if getattr(args, "workers", None) else settings.worker_list()

    def open_with_workers(model: str, request: LoadRequest, overrides: dict[str, Any]) -> ChatEngine:
        return open_engine(model, replace(request, workers=workers), overrides)

    if args.mlock:
        settings = replace(settings, use_mlock=True)
    db = getattr(args, "db", None)
    store = ConversationStore(db, named=db is not None)
    app = LocalR1App(store=store, settings=settings, engine_factory=open_with_workers, startup_notices=notices)
    try:
        app.run()
    finally:
        store.close()
    if app.return_code == TERMINATED:
        print("localr1: terminated", file=sys.stderr)
        return TERMINATED
    return 0
