"""Splitting a name into words, the way the JavaScript SDK ecosystem (lodash ``_.words``) does it.

Why our own copy: warehouse column names must come out exactly as the incumbents' loaders name
them (``camelCase123Key`` → ``camel_case_123_key``, ``XmlHTTP`` → ``xml_http``, emoji kept as
words), and those loaders split words with lodash's rules. Python has no such splitter, so the
rules are re-expressed here as one regular expression over code points.

Two flavours:

* :func:`words` splits digits into their own words (``walk500Miles`` → walk, 500, Miles);
* :func:`words_with_numbers` keeps digits with the word they touch (``walk500Miles`` → walk500,
  Miles; ``6h`` stays one word), used when a destination turns off ``underscoreDivideNumbers``.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Character classes (JavaScript works on UTF-16 units; astral characters are one code point here).
_ASTRAL = "\U00010000-\U0010ffff\ud800-\udfff"
_COMBO = "\u0300-\u036f\ufe20-\ufe2f\u20d0-\u20ff"
_DINGBAT = "\u2700-\u27bf"
_LOWER = "a-z\xdf-\xf6\xf8-\xff"
_MATH_OP = "\xac\xb1\xd7\xf7"
_NON_CHAR = "\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xbf"
_PUNCT = "\u2000-\u206f"
_SPACE = (
    " \t\x0b\f\xa0\ufeff\n\r\u2028\u2029\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)
_UPPER = "A-Z\xc0-\xd6\xd8-\xde"
_VAR = "\ufe0e\ufe0f"
_BREAK_SET = _MATH_OP + _NON_CHAR + _PUNCT + _SPACE

_APOS = "['\u2019]"
_BREAK = f"[{_BREAK_SET}]"
_COMBO_C = f"[{_COMBO}]"
_DIGITS = r"\d+"
_DINGBAT_C = f"[{_DINGBAT}]"
_LOWER_C = f"[{_LOWER}]"
_MISC = f"[^{_ASTRAL}{_BREAK_SET}0-9{_DINGBAT}{_LOWER}{_UPPER}]"
_FITZ = "[\U0001f3fb-\U0001f3ff]"
_MODIFIER = f"(?:{_COMBO_C}|{_FITZ})"
_NON_ASTRAL = f"[^{_ASTRAL}]"
_REGIONAL = "[\U0001f1e6-\U0001f1ff]{2}"
_SURR_PAIR = "[\U00010000-\U0010ffff]"
_UPPER_C = f"[{_UPPER}]"
_ZWJ = "\u200d"

_MISC_LOWER = f"(?:{_LOWER_C}|{_MISC})"
_MISC_UPPER = f"(?:{_UPPER_C}|{_MISC})"
_CONTR_LOWER = f"(?:{_APOS}(?:d|ll|m|re|s|t|ve))?"
_CONTR_UPPER = f"(?:{_APOS}(?:D|LL|M|RE|S|T|VE))?"
_OPT_MOD = f"{_MODIFIER}?"
_OPT_VAR = f"[{_VAR}]?"
_OPT_JOIN = f"(?:{_ZWJ}(?:{_NON_ASTRAL}|{_REGIONAL}|{_SURR_PAIR}){_OPT_VAR}{_OPT_MOD})*"
_ORD_LOWER = r"\d*(?:1st|2nd|3rd|(?![123])\dth)(?=\b|[A-Z_])"
_ORD_UPPER = r"\d*(?:1ST|2ND|3RD|(?![123])\dTH)(?=\b|[a-z_])"
_SEQ = _OPT_VAR + _OPT_MOD + _OPT_JOIN
_EMOJI = f"(?:{_DINGBAT_C}|{_REGIONAL}|{_SURR_PAIR}){_SEQ}"

_UNICODE_WORD = re.compile(
    "|".join(
        [
            f"{_UPPER_C}?{_LOWER_C}+{_CONTR_LOWER}(?={_BREAK}|{_UPPER_C}|$)",
            f"{_MISC_UPPER}+{_CONTR_UPPER}(?={_BREAK}|{_UPPER_C}{_MISC_LOWER}|$)",
            f"{_UPPER_C}?{_MISC_LOWER}+{_CONTR_LOWER}",
            f"{_UPPER_C}+{_CONTR_UPPER}",
            _ORD_UPPER,
            _ORD_LOWER,
            _DIGITS,
            _EMOJI,
        ]
    ),
    re.ASCII,  # \d and \b are ASCII-only, as in JavaScript
)
_HAS_UNICODE_WORD = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]|[0-9][a-zA-Z]|[a-zA-Z][0-9]|[^a-zA-Z0-9 ]")
_ASCII_WORD = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")


def _spans(text: str) -> list[tuple[int, int]]:
    pattern = _UNICODE_WORD if _HAS_UNICODE_WORD.search(text) else _ASCII_WORD
    return [m.span() for m in pattern.finditer(text)]


def words(text: str) -> list[str]:
    """The words of ``text``: case changes, digits, punctuation and spaces separate words."""
    return [text[a:b] for a, b in _spans(text)]


def words_with_numbers(text: str) -> list[str]:
    """Like :func:`words`, but a run of digits stays with the word it touches: it joins the word
    just before it (``walk500``), else the lower-case word right after it (``6h``)."""
    spans = _spans(text)
    out: list[list[int]] = []
    i = 0
    while i < len(spans):
        a, b = spans[i]
        if text[a:b].isdigit() and text[a:b].isascii():
            if out and out[-1][1] == a and not text[out[-1][0] : out[-1][1]].isdigit():
                out[-1][1] = b
                i += 1
                continue
            if i + 1 < len(spans) and spans[i + 1][0] == b:
                na, nb = spans[i + 1]
                nxt = text[na:nb]
                if nxt[:1].islower() or nxt[:1].isdigit():
                    out.append([a, nb])
                    i += 2
                    continue
        out.append([a, b])
        i += 1
    return [text[a:b] for a, b in out]


_APOSTROPHES = re.compile("['\u2019]")


@lru_cache(maxsize=65536)
def snake_case(text: str, with_numbers: bool = False) -> str:
    """``Foo Bar`` → ``foo_bar``; apostrophes vanish (``b's`` → ``bs``); no accent folding."""
    if not text:
        return ""
    cleaned = _APOSTROPHES.sub("", str(text))
    parts = words_with_numbers(cleaned) if with_numbers else words(cleaned)
    return "_".join(p.lower() for p in parts)
