from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis budgets for tests/sources/test_fuzz.py: a small one in the normal suite, a long one
# with `make fuzz` (HYPOTHESIS_PROFILE=fuzz). Registered here, applied by the fuzz tests
# themselves, so no other test's settings change.
_SLOW_INPUT_IS_THE_POINT = [HealthCheck.too_slow, HealthCheck.data_too_large]
for _name, _examples in (("parsers", 50), ("fuzz", 3000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=_SLOW_INPUT_IS_THE_POINT,
        database=None,  # no example files written into the worktree
    )
FUZZ_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "parsers")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a landing file (gzipped when its name ends in .gz) and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        return path

    return _write
