"""Put on PYTHONPATH by tests/conftest.py: child processes of tests report llama.cpp use (see watch.py)."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_localr1_llama_watch", os.path.join(os.path.dirname(__file__),
                                                                                      "watch.py"))
if _spec is not None and _spec.loader is not None:
    _watch = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_watch)
    _watch.watch_child()
