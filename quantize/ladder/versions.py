"""Which llama.cpp built the files: recorded in manifests and reports."""

from __future__ import annotations

import llama_cpp

from quantize.ladder.ggml_tensor import ggml


def llama_cpp_versions() -> dict[str, str]:
    """llama-cpp-python's version, and the llama/ggml versions and ggml commit of its vendored llama.cpp."""
    lib = ggml()
    return {
        "llama_cpp_python": str(llama_cpp.__version__),
        "llama": (llama_cpp.llama_version() or b"").decode() or "unknown",
        "ggml": lib.version,
        "ggml_commit": lib.commit,
    }
