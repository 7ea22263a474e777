"""What may leave the warehouse: email addresses masked, data strings escaped for HTML.

Below every layer (like :mod:`journeymine.sql`): the dashboard, the summaries, the XES/OCEL
exports and the feelings' quotes all mask with the one pattern here, so they cannot disagree on
what an email address is.
"""

from __future__ import annotations

import html
import re

# Unicode local parts and domains (``josé@exämple.de``), a letters-only top-level domain: a
# version tag such as ``d3@7.8`` in bundled JavaScript is not an address.
EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
EMAIL_MASK = "[email hidden]"


def scrub(text: str, mask: str = EMAIL_MASK) -> str:
    """``text`` with every email address replaced by ``mask``."""
    return EMAIL.sub(mask, text)


def label(value: object) -> str:
    """A data string made safe for HTML: emails masked, HTML special characters escaped."""
    return html.escape(scrub(str(value)), quote=False)
