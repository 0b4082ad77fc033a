"""Regular expressions for the OpenAPI document, built from the server's own rules, so that the strings the
document allows are exactly the strings the server takes."""

import functools
import sys

from moderation.prompt import is_blank

SURROGATES = range(0xD800, 0xE000)
"""Not characters, and no pattern can name them (a JSON Schema validator refuses ``\\ud800``). A text of nothing but
lone surrogates is not Unicode (I-JSON forbids it), and the server refuses it as blank."""
LATIN_1 = range(256)
"""The characters an HTTP header value carries, one byte each."""
HTTP_WHITESPACE = " \t"
"""What HTTP drops around a header's value (RFC 9110): the server drops it too, whichever parser read the request."""


def character_class(keep, code_points=range(sys.maxunicode + 1)) -> str:
    """A regular expression class of the characters of ``code_points`` that ``keep`` takes, as ranges: ``\\uXXXX``
    escapes where they fit, the character itself above the Basic Multilingual Plane (ECMA-262 and Python read both)."""
    ranges, start, previous = [], None, None
    for code in code_points:
        if code in SURROGATES or not keep(chr(code)):
            continue
        if start is None or code != previous + 1:
            if start is not None:
                ranges.append((start, previous))
            start = code
        previous = code
    if start is not None:
        ranges.append((start, previous))
    return "[" + "".join(_written(low) if low == high else f"{_written(low)}-{_written(high)}"
                         for low, high in ranges) + "]"


@functools.cache
def blank_text() -> str:
    """Matches a blank text (:func:`moderation.prompt.is_blank`), whole: the document says that a text is ``not``
    this. (A pattern for the texts that are not blank, a class of nearly every character, would be as true, but a
    tester that joins it with ``maxLength`` compiles a regular expression of 20,000 such classes, for seconds.)"""
    return f"^{character_class(is_blank)}*$"


def header_token(max_length: int) -> str:
    """Matches a header value of 1 to ``max_length`` printable characters, with any :data:`HTTP_WHITESPACE` around
    them."""
    printable = character_class(str.isprintable, LATIN_1)
    shown = character_class(lambda character: character.isprintable() and character not in HTTP_WHITESPACE, LATIN_1)
    around = f"[{HTTP_WHITESPACE}]*"
    return f"^{around}{shown}(?:{printable}{{0,{max_length - 2}}}{shown})?{around}$"


def _written(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
