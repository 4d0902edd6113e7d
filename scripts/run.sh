#!/usr/bin/env bash
# The main job: install, fetch model and corpus, bring the index in sync, serve the API and the chat page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> index"
.venv/bin/assistant index || [[ $? == 2 ]]  # 2 = partial: some files were unreadable (listed above)
echo "==> serve"
exec .venv/bin/assistant serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
