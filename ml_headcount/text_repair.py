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
tests/test_text_repair.py checks the equality on every real CV we have.
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
    """Characters that some other step of fix_text (C1, ligatures, width, controls, surrogates, escapes) would change."""
    characters = {"\x1b"} | {chr(i) for i in range(0x80, 0xA0)} | {chr(i) for i in chardata.LIGATURES}
    characters |= {chr(i) for i in chardata.WIDTH_MAP} | {chr(i) for i in chardata.CONTROL_CHARS}
    return re.compile("[" + re.escape("".join(sorted(characters))) + "\ud800-\udfff]")


def may_hold_mojibake(text: str) -> bool:
    """False only when BADNESS_RE matches nowhere in the text (so ftfy's encoding fix leaves every line alone).

    A match contains a trigger character and is at most `width` long, so it lies
    in the window around one; the window that starts at the trigger covers
    the branch anchored at a line's start. Windows may match where a line
    would not (a false alarm costs only speed).
    """
    width = _badness_width()
    for found in _mojibake_trigger_pattern().finditer(text):
        at = found.start()
        if BADNESS_RE.search(text[max(0, at - width + 1) : at + width]) or BADNESS_RE.search(text[at : at + width]):
            return True
    return False


@functools.cache
def _badness_width() -> int:
    from re import _parser

    return _parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags).getwidth()[1]


def _needs_ftfy(text: str) -> bool:
    return bool(chardata.HTML_ENTITY_RE.search(text) or _other_fix_pattern().search(text) or may_hold_mojibake(text))


def repair(text: str) -> str:
    """Exactly `ftfy.fix_text(text)`."""
    if text.isascii() or len(text) >= ftfy.TextFixerConfig().max_decode_length or _needs_ftfy(text):
        return ftfy.fix_text(text)
    current = text
    while True:  # fix_text repeats its steps until the text stops changing
        fixed = unicodedata.normalize("NFC", fixes.fix_line_breaks(fixes.uncurl_quotes(current)))
        if fixed == current:
            return current
        if _needs_ftfy(fixed):
            return ftfy.fix_text(text)
        current = fixed
