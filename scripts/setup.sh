#!/usr/bin/env bash
# Install everything the assistant needs into ./.venv, fetch and verify the embedding model, fetch the corpus.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--test]   (--test adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
req=requirements/base.txt
[[ "${1:-}" == "--test" ]] && req=requirements/test.txt
stamp=".venv/.installed-$(sha256sum "$req" requirements/base.txt pyproject.toml | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "==> installing $req (torch first in the same resolve: the CPU build)"
  .venv/bin/pip install --disable-pip-version-check -q -r "$req" 2>&1 | grep -v "is ignored" || true
  .venv/bin/pip install --disable-pip-version-check -q --no-deps -e . 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import assistant, api, chromadb, sentence_transformers" # fail here, not later
  touch "$stamp"
fi

# Offline by design: the corpus mirror defaults to ../shared/corpus when it exists (tests and CI use it).
if [[ -z "${ASSISTANT_CORPUS_MIRROR:-}" && -d ../shared/corpus ]]; then
  export ASSISTANT_CORPUS_MIRROR=$(cd ../shared/corpus && pwd)
fi
echo "==> embedding model"
.venv/bin/assistant models fetch
echo "==> corpus sources"
.venv/bin/assistant corpus fetch || echo "(some sources could not be fetched: the index will hold the rest)"
