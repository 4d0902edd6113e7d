#!/usr/bin/env bash
# Install everything (test tools, headless Chromium, the local LLM) and run all tests: fast ones first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/install_browser.sh
[[ -x scripts/setup_local_llm.sh ]] && scripts/setup_local_llm.sh
export ASSISTANT_CORPUS_MIRROR=${ASSISTANT_CORPUS_MIRROR:-$(cd ../shared/corpus 2>/dev/null && pwd || true)}
echo "==> lint gate (ruff, mypy on assistant/ and api/)"
.venv/bin/ruff check .
.venv/bin/mypy
echo "==> fast tests"
.venv/bin/python -m pytest -m "not slow" -q "$@"
echo "==> slow tests (full model, servers, browser, quality gate)"
.venv/bin/python -m pytest -m "slow" -q "$@"
