"""The shared escaping: markup escaped, email addresses masked."""

from __future__ import annotations

from journeymine.dashboard.style import label
from tests.dashboard.conftest import SCRIPT


def test_label_escapes_markup_and_masks_emails() -> None:
    assert label(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert label("call jane.doe@acme.io now") == "call [email hidden] now"
