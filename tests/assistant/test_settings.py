"""Settings: bounds with a clear message at start, no side effects at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.errors import InvalidSettings
from assistant.settings import OFFLINE_ENVIRONMENT, Settings, load_settings
from tests.conftest import REPO


def test_every_setting_says_what_it_is():
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_an_out_of_bounds_setting_names_the_variable_and_the_bound(monkeypatch):
    monkeypatch.setenv("ASSISTANT_TOP_K", "-3")
    with pytest.raises(InvalidSettings, match=r"ASSISTANT_TOP_K='-3': Input should be greater than or equal to 1"):
        load_settings()
    with pytest.raises(InvalidSettings, match="ASSISTANT_LLM_TIMEOUT"):
        load_settings(top_k=5, llm_timeout=0)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT and not k.startswith("ASSISTANT_")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def test_importing_the_settings_changes_no_environment():
    code = "import os, assistant.settings; print(sorted(set(assistant.settings.OFFLINE_ENVIRONMENT) & set(os.environ)))"
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cli_refuses_a_bad_setting_with_exit_code_3_and_one_line():
    run = subprocess.run([sys.executable, "-m", "assistant.cli", "search", "401(k)"], env=_clean_env(
        ASSISTANT_TOP_K="-3"), capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 3
    assert run.stderr.strip().splitlines() == [
        "error: invalid settings: ASSISTANT_TOP_K='-3': Input should be greater than or equal to 1"]
