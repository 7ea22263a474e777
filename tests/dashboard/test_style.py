"""The shared escaping: markup escaped, email addresses masked."""

from __future__ import annotations

from journeymine.dashboard.style import duration, label, short, wrap
from tests.dashboard.conftest import SCRIPT


def test_label_escapes_markup_and_masks_emails() -> None:
    assert label(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert label("call jane.doe@acme.io now") == "call [email hidden] now"


def test_wrap_breaks_names_into_lines_and_never_cuts() -> None:
    name = "web.demo_requested <b>"
    assert wrap(name, 8) == "web.<br>demo_<br>requested <br>&lt;b&gt;"
    assert wrap(name, 8).replace("<br>", "") == label(name)
    assert wrap("ann@acme.io", 5) == "[email <br>hidden]"


def test_short_masks_before_cutting() -> None:
    assert short("x" * 40, 10) == "x" * 9 + "…"
    assert short("write to jane.doe@example.com today", 20) == "write to [email hid…"
    assert short("<i>", 10) == "&lt;i&gt;"


def test_duration_in_words() -> None:
    assert [duration(s) for s in (59, 5400, 2 * 86400 - 1, 3 * 86400)] == [
        "1 min",
        "1.5 h",
        "48.0 h",
        "3.0 days",
    ]
    assert duration(None) == "–" and duration(float("nan")) == "–"
