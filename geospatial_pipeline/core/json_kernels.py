"""JSON grammar, compiled: whitespace, strings (escapes, UTF-8), numbers, literals and whole values, as
Python's `json` accepts them (NaN, Infinity and lone surrogate escapes included; invalid UTF-8 refused),
nesting capped at MAX_DEPTH. Used by scan.py; nothing here decodes strings or numbers.
"""

from __future__ import annotations

import numba
import numpy as np

from geospatial_pipeline.core.arrays import Bytes

MAX_DEPTH = 1024  # orjson's limit; Python's own recursion limit is about the same
# JSON errors, by code (the message is ERRORS[code]).
ERRORS = (
    "",
    "unexpected end of text",
    "unexpected character",
    "invalid string escape",
    "control character in a string",
    "invalid UTF-8",
    "invalid number",
    "invalid literal",
    f"nesting deeper than {MAX_DEPTH}",
    "extra data after the value",
    "expected ':' after an object key",
    "expected ',' or the end of the object or array",
    "expected an object key string",
)
E_EOF, E_CHAR, E_ESCAPE, E_CONTROL, E_UTF8, E_NUMBER, E_LITERAL, E_DEEP, E_EXTRA, E_COLON, E_SEP, E_KEY = range(1, 13)
# Number kinds: the integer -0 (which Python reads as +0.0), NaN and the infinities.
N_PLAIN, N_NEG_ZERO_INT, N_NONFINITE = 0, 1, 2

_HEX = np.full(256, -1, dtype=np.int64)
for _c in b"0123456789":
    _HEX[_c] = _c - 48
for _c in b"abcdef":
    _HEX[_c] = _c - 87
for _c in b"ABCDEF":
    _HEX[_c] = _c - 55


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf: Bytes, i: int, end: int) -> int:
    while i < end and (buf[i] == 0x20 or buf[i] == 0x0A or buf[i] == 0x0D or buf[i] == 0x09):
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _utf8(buf: Bytes, i: int, end: int) -> int:
    """A multi-byte UTF-8 sequence at buf[i] (>= 0x80): the index after it, or -1 if invalid."""
    c = buf[i]
    if 0xC2 <= c <= 0xDF:
        n, lo, hi = 1, 0x80, 0xBF
    elif c == 0xE0:
        n, lo, hi = 2, 0xA0, 0xBF
    elif 0xE1 <= c <= 0xEF:  # ED A0-BF: a surrogate, which Python's json reads ("surrogatepass")
        n, lo, hi = 2, 0x80, 0xBF
    elif c == 0xF0:
        n, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        n, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF4:
        n, lo, hi = 3, 0x80, 0x8F
    else:
        return -1
    if i + n >= end:
        return -1
    if not (lo <= buf[i + 1] <= hi):
        return -1
    for k in range(2, n + 1):
        if not (0x80 <= buf[i + k] <= 0xBF):
            return -1
    return i + n + 1


@numba.njit(cache=True, nogil=True)
def _string(buf: Bytes, i: int, end: int) -> tuple[int, int, bool]:
    """The string starting at buf[i] ('"'): (index after it, error, has an escape)."""
    i += 1
    escaped = False
    while i < end:
        c = buf[i]
        if c == 0x22:
            return i + 1, 0, escaped
        if c == 0x5C:
            escaped = True
            if i + 1 >= end:
                return i, E_EOF, escaped
            e = buf[i + 1]
            if e == 0x75:  # \uXXXX
                if i + 6 > end:
                    return i, E_ESCAPE, escaped
                for k in range(2, 6):
                    if _HEX[buf[i + k]] < 0:
                        return i, E_ESCAPE, escaped
                i += 6
            elif e == 0x22 or e == 0x5C or e == 0x2F or e == 0x62 or e == 0x66 or e == 0x6E or e == 0x72 or e == 0x74:
                i += 2
            else:
                return i, E_ESCAPE, escaped
        elif c < 0x20:
            return i, E_CONTROL, escaped
        elif c >= 0x80:
            j = _utf8(buf, i, end)
            if j < 0:
                return i, E_UTF8, escaped
            i = j
        else:
            i += 1
    return i, E_EOF, escaped


@numba.njit(cache=True, nogil=True, inline="always")
def _literal(buf: Bytes, i: int, end: int, word: Bytes) -> bool:
    if i + len(word) > end:
        return False
    for k in range(len(word)):  # noqa: SIM110 - numba compiles loops, not generator expressions
        if buf[i + k] != word[k]:
            return False
    return True


_TRUE, _FALSE, _NULL = (np.frombuffer(w, dtype=np.uint8) for w in (b"true", b"false", b"null"))
_NAN, _INFINITY = (np.frombuffer(w, dtype=np.uint8) for w in (b"NaN", b"Infinity"))


@numba.njit(cache=True, nogil=True, inline="always")
def _number(buf: Bytes, i: int, end: int) -> tuple[int, int, int]:
    """The number (or NaN, Infinity, -Infinity) at buf[i]: (index after it, error, kind)."""
    start = i
    if buf[i] == 0x4E:  # NaN
        return (i + 3, 0, N_NONFINITE) if _literal(buf, i, end, _NAN) else (i, E_LITERAL, 0)
    if buf[i] == 0x2D:
        i += 1
    if i < end and buf[i] == 0x49:  # Infinity, -Infinity
        return (i + 8, 0, N_NONFINITE) if _literal(buf, i, end, _INFINITY) else (i, E_LITERAL, 0)
    if i >= end or not (0x30 <= buf[i] <= 0x39):
        return i, E_NUMBER, 0
    zero = buf[i] == 0x30
    i += 1
    if not zero:
        while i < end and 0x30 <= buf[i] <= 0x39:
            i += 1
    plain_int = True
    if i < end and buf[i] == 0x2E:
        plain_int = False
        i += 1
        if i >= end or not (0x30 <= buf[i] <= 0x39):
            return i, E_NUMBER, 0
        while i < end and 0x30 <= buf[i] <= 0x39:
            i += 1
    if i < end and (buf[i] == 0x65 or buf[i] == 0x45):
        plain_int = False
        i += 1
        if i < end and (buf[i] == 0x2B or buf[i] == 0x2D):
            i += 1
        if i >= end or not (0x30 <= buf[i] <= 0x39):
            return i, E_NUMBER, 0
        while i < end and 0x30 <= buf[i] <= 0x39:
            i += 1
    if plain_int and zero and buf[start] == 0x2D:
        return i, 0, N_NEG_ZERO_INT  # Python reads the integer -0 as 0, so its double is +0.0
    return i, 0, N_PLAIN


@numba.njit(cache=True, nogil=True, inline="always")
def _scalar(buf: Bytes, i: int, end: int) -> tuple[int, int, bool]:
    """A string, number or literal at buf[i]: (index after it, error, non-finite number)."""
    c = buf[i]
    if c == 0x22:
        j, err, _ = _string(buf, i, end)
        return j, err, False
    if c == 0x2D or c == 0x4E or c == 0x49 or 0x30 <= c <= 0x39:
        j, err, kind = _number(buf, i, end)
        return j, err, kind == N_NONFINITE
    if _literal(buf, i, end, _TRUE):
        return i + 4, 0, False
    if _literal(buf, i, end, _FALSE):
        return i + 5, 0, False
    if _literal(buf, i, end, _NULL):
        return i + 4, 0, False
    return i, E_CHAR, False


@numba.njit(cache=True, nogil=True)
def _value(buf: Bytes, i: int, end: int, depth: int, stack: Bytes) -> tuple[int, int, bool]:
    """Validate the JSON value at buf[i] (whitespace allowed before it), nested `depth` deep already:
    (index after it, error, a non-finite number inside)."""
    top = 0
    nonfinite = False
    need_value = True
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return i, E_EOF, nonfinite
        c = buf[i]
        if need_value:
            if c == 0x7B or c == 0x5B:
                if depth + top >= MAX_DEPTH:
                    return i, E_DEEP, nonfinite
                stack[top] = c
                top += 1
                i = _ws(buf, i + 1, end)
                if i >= end:
                    return i, E_EOF, nonfinite
                if (c == 0x7B and buf[i] == 0x7D) or (c == 0x5B and buf[i] == 0x5D):
                    top -= 1
                    i += 1
                    need_value = False
                elif c == 0x7B:
                    i, err = _key(buf, i, end)
                    if err:
                        return i, err, nonfinite
            else:
                i, err, nf = _scalar(buf, i, end)
                if err:
                    return i, err, nonfinite
                nonfinite |= nf
                need_value = False
        elif c == 0x2C:
            i = _ws(buf, i + 1, end)
            if stack[top - 1] == 0x7B:
                i, err = _key(buf, i, end)
                if err:
                    return i, err, nonfinite
            need_value = True
        elif (c == 0x5D and stack[top - 1] == 0x5B) or (c == 0x7D and stack[top - 1] == 0x7B):
            top -= 1
            i += 1
        else:
            return i, E_SEP, nonfinite
        if top == 0 and not need_value:
            return i, 0, nonfinite


@numba.njit(cache=True, nogil=True)
def _key(buf: Bytes, i: int, end: int) -> tuple[int, int]:
    """An object key and its colon at buf[i]: (index after the colon, error)."""
    if i >= end or buf[i] != 0x22:
        return i, (E_EOF if i >= end else E_KEY)
    i, err, _ = _string(buf, i, end)
    if err:
        return i, err
    i = _ws(buf, i, end)
    if i >= end or buf[i] != 0x3A:
        return i, (E_EOF if i >= end else E_COLON)
    return i + 1, 0


@numba.njit(cache=True, nogil=True)
def _text_equals(buf: Bytes, start: int, stop: int, escaped: bool, word: Bytes) -> bool:
    """Is the JSON string content buf[start:stop] (quotes excluded) the ASCII `word`, escapes decoded?"""
    if not escaped:
        if stop - start != len(word):
            return False
        return _literal(buf, start, stop, word)
    k = 0
    i = start
    while i < stop:
        c = buf[i]
        if c == 0x5C:
            e = buf[i + 1]
            if e == 0x75:
                c = (_HEX[buf[i + 2]] << 12) | (_HEX[buf[i + 3]] << 8) | (_HEX[buf[i + 4]] << 4) | _HEX[buf[i + 5]]
                i += 6
            else:
                c = (
                    8
                    if e == 0x62
                    else 12
                    if e == 0x66
                    else 10
                    if e == 0x6E
                    else 13
                    if e == 0x72
                    else 9
                    if e == 0x74
                    else e
                )
                i += 2
        else:
            i += 1
        if k >= len(word) or c != word[k]:
            return False
        k += 1
    return k == len(word)


@numba.njit(cache=True, nogil=True)
def _member_key(buf: Bytes, i: int, end: int, names: tuple[Bytes, ...]) -> tuple[int, int, int]:
    """The key at buf[i]: (where its value starts, error, which of `names` it is or len(names)); the value
    must start before `end`."""
    if i >= end or buf[i] != 0x22:
        return i, (E_EOF if i >= end else E_KEY), len(names)
    j, err, escaped = _string(buf, i, end)
    if err:
        return j, err, len(names)
    which = len(names)
    for k in range(len(names)):
        if _text_equals(buf, i + 1, j - 1, escaped, names[k]):
            which = k
            break
    j = _ws(buf, j, end)
    if j >= end or buf[j] != 0x3A:
        return j, (E_EOF if j >= end else E_COLON), which
    j = _ws(buf, j + 1, end)
    return j, (E_EOF if j >= end else 0), which


@numba.njit(cache=True, nogil=True, inline="always")
def _after_member(buf: Bytes, j: int, end: int) -> tuple[int, int, bool]:
    """After an object member's value, ending at buf[j]: (where the next key starts, or the index after
    the closing brace; error; the object is closed)."""
    i = _ws(buf, j, end)
    if i >= end:
        return i, E_EOF, False
    if buf[i] == 0x7D:
        return i + 1, 0, True
    if buf[i] != 0x2C:
        return i, E_SEP, False
    return _ws(buf, i + 1, end), 0, False
