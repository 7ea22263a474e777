from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from journeymine import load
from tests.load import fake_source


@pytest.fixture
def fake_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the segment folder through the tiny fake source."""
    monkeypatch.setattr(load, "parser_for", lambda source: fake_source.parse_file)


@pytest.fixture
def landing(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write one landing file: ``landing("a.txt", "lines...")`` under segment/."""
    root = tmp_path / "landing"

    def write(name: str, text: str) -> Path:
        path = root / "segment" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return root

    return write
