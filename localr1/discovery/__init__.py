"""GGUF models already on this disk, wherever they came from: localr1's models folder, the Hugging Face cache,
LM Studio's models folder, Ollama's blob store (read through its manifests) and extra folders named in the
settings. Nothing is copied: each record says where the file is, and models are used in place.

`records` identifies a file (which registry model it is, from its header); `sources` walks each place; `scan`
and `find_local` put them together. The registry is passed in, never imported (the registry imports this).
"""

from __future__ import annotations

from localr1.discovery.records import SOURCE_NAMES, Identity, LocalModel
from localr1.discovery.scan import Scan, find_local, scan

__all__ = ["SOURCE_NAMES", "Identity", "LocalModel", "Scan", "find_local", "scan"]
