from __future__ import annotations

from pathlib import Path

import pytest

import journeymine as jm
from journeymine import load
from journeymine.errors import WarehouseError
from tests.load import fake_source


def test_notebook_api_returns_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "parser_for", lambda source: fake_source.parse_file)
    (tmp_path / "l" / "segment").mkdir(parents=True)
    (tmp_path / "l" / "segment" / "a.txt").write_text(
        "k1,1785000000,anonymous_id,a1,web.page_view:/,user_id,u1\n"
        "k2,1785000100,user_id,u1,web.signed_up\n"
        "k3,1785000200,user_id,u2,web.signed_up\n"
    )
    db = tmp_path / "w.duckdb"
    jm.load_landing(db, tmp_path / "l")
    with jm.open_warehouse(db) as wh:
        one = wh.touchpoints(person_id=1)
        assert list(one.activity) == ["web.page_view:/", "web.signed_up"]
        assert len(wh.touchpoints(since="2026-07-25 17:21:00+00")) == 2
        assert len(wh.persons()) == 2
        assert set(wh.explain_person(1).rule) == {"fake_link"}
        with pytest.raises(WarehouseError, match="no 'dfg' yet"):
            wh.view("dfg")
        with pytest.raises(WarehouseError, match="unknown view"):
            wh.view("secrets")
