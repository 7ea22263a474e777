"""Salesforce record ids: the 15-character (case-sensitive) and 18-character forms as one.

Reports and the UI show a 15-character id in which case matters; the API and Data Export give
an 18-character id whose last 3 letters encode the case of the first 15, so that it survives
case-insensitive tools. :func:`sf_id18` turns either into the 18-character form with its case
restored, so both forms of one record compare equal.
"""

from __future__ import annotations

EMPTY_ID = "000000000000000"  # Salesforce's null lookup, exported as 000000000000000AAA
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


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
        return text + "".join(_checksum_char(text[i : i + 5]) for i in (0, 5, 10))
    return _restore_case(text, value)


def _checksum_char(chunk: str) -> str:
    bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
    return _CHECKSUM_ALPHABET[bits]


def _restore_case(text: str, value: str) -> str:
    suffix = text[15:].upper()
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
