"""ftfy's `fix_text`, without its cost for text that holds nothing ftfy could change beyond quotes, line breaks and NFC.

`ftfy.fix_text` runs its mojibake detector (a large regex) and several full
translation passes over every text: ~1-4 ms per CV, most of `apply`'s time.
Each of its steps can only change a text that contains certain characters:
HTML unescaping needs an entity, the encoding fix needs a match of
`ftfy.badness.BADNESS_RE` (every branch of that regex needs one character from
a fixed set, computed below from the regex itself, so only short windows
around those characters need searching), C1 controls,
ligatures, full-width forms, surrogates, terminal escapes and control
characters need theirs. A text with none of these characters gets only what
the remaining steps do (quotes uncurled, line breaks unified, NFC), which is
what `repair` computes; any other text goes through `ftfy.fix_text` itself.
tests/corpus/test_text_repair.py checks the equality on every real CV we have.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import ftfy
from ftfy import chardata, fixes
from ftfy.badness import BADNESS_RE


def _item_characters(op, value) -> set[int] | None:
    """The code points a regex item matches, or None when it is not a plain literal or character set."""
    from re import _constants as c

    if op is c.LITERAL:
        return {value}
    if op is not c.IN:
        return None
    points: set[int] = set()
    for inner_op, inner in value:
        if inner_op is c.LITERAL:
            points.add(inner)
        elif inner_op is c.RANGE:
            points.update(range(inner[0], inner[1] + 1))
        else:  # NEGATE, CATEGORY: unbounded
            return None
    return points


@functools.cache
def mojibake_triggers() -> frozenset[str]:
    """Characters one of which every match of BADNESS_RE contains: per branch, its smallest required non-ASCII set."""
    from re import _constants as c
    from re import _parser

    parsed = _parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    branches = parsed[0][1][1] if len(parsed) == 1 and parsed[0][0] is c.BRANCH else [parsed]
    triggers: set[int] = set()
    for branch in branches:
        required = [p for op, value in branch if (p := _item_characters(op, value)) and min(p) >= 128]
        if not required:
            raise RuntimeError("a BADNESS_RE branch needs no non-ASCII character: the fast path would be unsound")
        triggers |= min(required, key=len)
    return frozenset(map(chr, triggers))


@functools.cache
def _mojibake_trigger_pattern() -> re.Pattern:
    return re.compile("[" + re.escape("".join(sorted(mojibake_triggers()))) + "]")


@functools.cache
def _other_fix_pattern() -> re.Pattern:
    """Characters that another step of fix_text (C1, ligatures, width, controls, surrogates, escapes) would change."""
    characters = {"\x1b"} | {chr(i) for i in range(0x80, 0xA0)} | {chr(i) for i in chardata.LIGATURES}
    characters |= {chr(i) for i in chardata.WIDTH_MAP} | {chr(i) for i in chardata.CONTROL_CHARS}
    return re.compile("[" + re.escape("".join(sorted(characters))) + "\ud800-\udfff]")


def may_hold_mojibake(text: str) -> bool:
    """False only when BADNESS_RE matches nowhere in the text (so ftfy's encoding fix leaves every line alone).

    A match contains a trigger character and is at most `width` long, so it lies
    in the window around one; all windows are searched at once, joined by a
    NUL (a match across two windows is a false alarm, which costs only speed).
    A branch anchored at a line's start (`^`) is searched in the window that
    starts at its trigger.
    """
    if text.isascii():
        return False
    width = _badness_width()
    starts = [found.start() for found in _mojibake_trigger_pattern().finditer(text)]
    if not starts:
        return False
    windows = "\x00".join(text[max(0, at - width + 1) : at + width] for at in starts)
    return bool(BADNESS_RE.search(windows)) or any(
        BADNESS_RE.search(text[at : at + width]) for at in starts if text[at] in _line_start_triggers()
    )


@functools.cache
def _line_start_triggers() -> frozenset[str]:
    """Trigger characters of the branches anchored with `^`."""
    from re import _constants as c
    from re import _parser

    parsed = _parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    anchored = [branch for branch in parsed[0][1][1] if any(op is c.AT for op, _ in branch)]
    return frozenset(
        chr(p)
        for branch in anchored
        for op, value in branch
        if (points := _item_characters(op, value))
        for p in points
        if p >= 128
    )


@functools.cache
def _badness_width() -> int:
    from re import _parser

    return _parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags).getwidth()[1]


def repair(text: str) -> str:
    """Exactly `ftfy.fix_text(text)`.

    The fast path takes NFC text in which only quotes and line breaks would
    change; it applies those two steps, and checks that their result gives
    ftfy's loop nothing more to do (still NFC, still no mojibake).
    """
    if (
        text.isascii()
        or len(text) >= ftfy.TextFixerConfig().max_decode_length
        or not unicodedata.is_normalized("NFC", text)
        or _other_fix_pattern().search(text)
        or ("&" in text and chardata.HTML_ENTITY_RE.search(text))
        or may_hold_mojibake(text)
    ):
        return ftfy.fix_text(text)
    fixed = fixes.fix_line_breaks(fixes.uncurl_quotes(text))
    if fixed != text and (not unicodedata.is_normalized("NFC", fixed) or may_hold_mojibake(fixed)):
        return ftfy.fix_text(text)
    return fixed
