"""JSON lines: the fast path for the usual line reads exactly what every check would read."""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from journeymine.ingest.sources import _json
from journeymine.ingest.sources._common import RecordError, decode_text
from journeymine.ingest.sources._json import MAX_DEPTH, TOO_DEEP, json_lines

# Lines on and around the edges of the fast path: escapes, lone surrogates, deep nesting, big
# and odd numbers, duplicate keys, constants, bad bytes, text around the object.
TRICKY = [
    '{"a": 1}',
    '{"a": 1, "a": 2}',
    '{"a": 18446744073709551616, "b": -0.0, "c": 1e400, "d": 1.0, "e": 0}',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": "\\ud800"}',
    '{"a": "\\ud83d\\ude00"}',
    '{"a": "\\u00e9t\\u00e9"}',
    '{"a": "été"}',
    '{"a": 1} ',
    ' {"a": 1}',
    '{"a": 1}\r',
    '{"a": 1}\x0c',
    '{"a": 1} x',
    '{"a": 1}{"b": 2}',
    '{"a": [1, 2,]}',
    '{"a": "x\ty"}',
    '{"a"',
    "[1, 2]",
    '"text"',
    "{" * 400 + "}" * 400,
    '{"a":' * 1500 + "1" + "}" * 1500,
    '{"a": "' + "9" * 5000 + '"}',
    '{"a": ' + "9" * 5000 + "}",
    "{}",
    "",
    "   ",
]
BAD_BYTES = [b'{"a": "caf\xe9"}', b'{"a": 1}\xff', b'\xe9{"a": 1}']


def read(text: str, *, checked: bool = False) -> list[tuple[int, str, Any]]:
    """``json_lines(text)``; with ``checked``, every line through the path that makes every
    check (the code of before). Both read from the same depth of the stack: the limit on
    nesting depends on it."""
    fast = _json.FAST_PATH
    _json.FAST_PATH = not checked
    try:
        return list(json_lines(text))
    finally:
        _json.FAST_PATH = fast


def comparable(records: list[tuple[int, str, Any]]) -> list[tuple[int, str, str]]:
    """Values by repr (1 and 1.0 and True differ, -0.0 and 0.0 too), errors by their reason."""
    return [
        (n, raw, f"error: {v}" if isinstance(v, RecordError) else repr(v)) for n, raw, v in records
    ]


def test_tricky_lines_read_as_with_every_check() -> None:
    lines = [*TRICKY, *(decode_text(b) for b in BAD_BYTES)]
    text = "\n".join(lines)
    found = comparable(read(text))
    assert found == comparable(read(text, checked=True))
    # and what that is, known independently for a few lines
    by_line = {n: v for n, _, v in found}
    assert by_line[1] == "{'a': 1}"
    assert by_line[2] == "{'a': 2}"  # the last of duplicate keys, as json.loads
    assert by_line[3] == "{'a': 18446744073709551616, 'b': -0.0, 'c': inf, 'd': 1.0, 'e': 0}"
    assert by_line[4].startswith("error: invalid JSON: NaN is not JSON")
    assert by_line[6].startswith("error: invalid text: a lone UTF-16 surrogate")
    assert by_line[7] == "{'a': '\U0001f600'}"
    assert by_line[14].startswith("error: invalid JSON: Extra data")
    # broken where the decoder is one level down: the JSON error, from any stack
    assert (
        by_line[21]
        == "error: invalid JSON: Expecting property name enclosed in double quotes at column 2"
    )
    assert by_line[22] == f"error: {TOO_DEEP}"
    assert len(found) == len(lines) - 2  # the blank lines yield nothing


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def a_line(draw: st.DrawFn) -> str:
    """A line as exporters write it, or damaged: JSON text, spaces, escapes, a cut, a bad byte."""
    value = {"k": draw(json_values), draw(st.text(max_size=3)): draw(json_values)}
    line = json.dumps(value, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if draw(st.booleans()):
        line = line[: draw(st.integers(0, len(line)))]
    if draw(st.booleans()):
        line = (
            draw(st.sampled_from(["", " ", "\r", "\t"]))
            + line
            + draw(st.sampled_from(["", " ", "\r", " x", "\x0c", ",", "}"]))
        )
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(line)))
        line = (
            line[:cut] + draw(st.sampled_from(["\udce9", "\\ud800", "\\udfff", '"'])) + line[cut:]
        )
    return line.replace("\n", "\\n")


@given(st.lists(a_line(), max_size=6))
def test_any_line_reads_as_with_every_check(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert comparable(read(text)) == comparable(read(text, checked=True))


def test_lines_nested_up_to_the_recursion_limit_read_as_with_every_check() -> None:
    # Line n nests n + 1 levels: the object, then n arrays. Up to the recursion limit, where
    # the decoder itself gives up, exactly the lines deeper than MAX_DEPTH are refused, on
    # the fast path as on the checked one.
    lines = [
        '{"a": ' + "[" * depth + "]" * depth + "}" for depth in range(1, sys.getrecursionlimit())
    ]
    text = "\n".join(lines)
    found = comparable(read(text))
    assert found == comparable(read(text, checked=True))
    refused = [n for n, _, v in found if v.startswith("error")]
    assert refused == list(range(MAX_DEPTH, len(lines) + 1))
    assert {v for _, _, v in found[MAX_DEPTH - 1 :]} == {f"error: {TOO_DEEP}"}
