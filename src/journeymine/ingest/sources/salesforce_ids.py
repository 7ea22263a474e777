"""Salesforce record ids: the 15-character (case-sensitive) and 18-character forms as one.

Reports and the UI show a 15-character id in which case matters; the API and Data Export give
an 18-character id whose last 3 letters encode the case of the first 15, so that it survives
case-insensitive tools. :func:`sf_id18` turns either into the 18-character form with its case
restored, so both forms of one record compare equal.
"""

from __future__ import annotations

import string
from functools import lru_cache

EMPTY_ID = "000000000000000"  # Salesforce's null lookup, exported as 000000000000000AAA
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


# An id's characters as bits of its checksum: "1" for an upper-case letter, "0" for the rest.
_CASE_BITS = str.maketrans(
    dict.fromkeys(string.ascii_uppercase, "1")
    | dict.fromkeys(string.ascii_lowercase + string.digits, "0")
)


@lru_cache(maxsize=8192)  # owners, accounts and a row's own id come up again and again
def sf_id18(value: str) -> str:
    """The canonical 18-character form of a 15- or 18-character Salesforce id.

    For each 5-character chunk of the 15-character id, bit ``i`` is set when character ``i`` is
    an upper-case letter; the bits index ``A..Z0..5``, giving one suffix character per chunk:
    ``001A0000006Vm9r`` -> chunks ``001A0`` (bit 3 -> 8 -> ``I``), ``00000`` (``A``), ``6Vm9r``
    (bit 1 -> 2 -> ``C``) -> ``001A0000006Vm9rIAC``.

    An 18-character id is case-insensitive by design, so its case is restored from its suffix
    (``001a0000006vm9riac`` -> ``001A0000006Vm9rIAC``). Raises ValueError for anything else.
    """
    text = value.strip()
    if not (text.isascii() and text.isalnum() and len(text) in (15, 18)):
        raise ValueError(f"not a Salesforce id: {value!r}")
    if len(text) == 15:
        return text + _checksum(text)
    return _restore_case(text, value)


# Character i of a chunk is bit i: a chunk's bits ("01000") read backwards are its number.
_CHUNK_LETTER = {f"{n:05b}"[::-1]: _CHECKSUM_ALPHABET[n] for n in range(32)}


def _checksum(id15: str) -> str:
    """The 3 suffix letters of a 15-character id (ASCII letters and digits)."""
    bits = id15.translate(_CASE_BITS)
    return _CHUNK_LETTER[bits[:5]] + _CHUNK_LETTER[bits[5:10]] + _CHUNK_LETTER[bits[10:]]


def _restore_case(text: str, value: str) -> str:
    suffix = text[15:].upper()
    if _checksum(text[:15]) == suffix:  # the usual case: exported with its case intact
        return text[:15] + suffix
    chars: list[str] = []
    for chunk, check in enumerate(suffix):
        bits = _CHECKSUM_ALPHABET.find(check)
        if bits < 0:
            raise ValueError(f"not a Salesforce id: {value!r} (bad checksum {text[15:]!r})")
        for i, ch in enumerate(text[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits >> i & 1)
            if upper and not ch.isalpha():
                raise ValueError(f"not a Salesforce id: {value!r} (checksum mismatch)")
            chars.append(ch.upper() if upper else ch.lower())
    return "".join(chars) + suffix
