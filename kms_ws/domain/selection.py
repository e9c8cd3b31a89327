"""§4.9 selection rules: which data-set values (file path, tape volume id, server IP,
disk block, ...) a rule selects, and how specific it is.

A rule is one of
  Value   - the value itself (exact, case-sensitive);
  Prefix  - values starting with a literal text (e.g. a directory "/data/fin/");
  Glob    - a shell-style pattern (fnmatch, case-sensitive: * ? [seq] [!seq]; * also
            crosses "/");
  Range   - From..To inclusive. Numeric when both bounds are decimal numbers without
            leading zeros ("0".."4294967296": disk blocks): the value is any decimal
            number between them. Otherwise fixed-width alphanumeric ("A00000".."A09999",
            tape volume ids): the bounds have the same length and, position by position,
            the same kind of character (digit, upper-case letter, lower-case letter, or
            the same other character); a value matches when it has that shape and lies
            between them (which is then the same as counting in that shape);
  Cidr    - an IPv4 or IPv6 network (ipaddress, strict: no host bits set); the value is
            an address of the same family inside it;
  Pattern - a regular expression matching the whole value (dynamic groups, §4.10/§4.11).

Specificity (the most specific match wins), from most to least specific:
  Value > Range and Cidr (fewer values covered first: a /24 covers 256, A00000..A09999
  covers 10000) > Prefix and Glob (more literal characters first) > Pattern.
`specificity()` is a sort key in that order (greater = more specific); two rules with
equal keys are a tie, broken by the caller's documented rule (the oldest object).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from .errors import InvalidParameter

KINDS = ("Value", "Prefix", "Glob", "Range", "Cidr", "Pattern")
MAX_TEXT = 512  # characters of a rule's text (a bound, prefix, glob, pattern; a Value is
# a data-set value: the schema bounds it)
MAX_DIGITS = 40  # a numeric bound: at most this many digits (2^128 has 39)

# Specificity classes (the first element of the sort key).
_EXACT, _NARROW, _LITERAL, _PATTERN = 3, 2, 1, 0


@dataclass(frozen=True)
class Selector:
    """One selection rule on a value: kind (one of KINDS) and its text; a Range has
    `text` = From and `upper` = To."""

    kind: str
    text: str
    upper: str | None = None


def check(sel: Selector) -> None:
    """Refuse a rule that cannot select anything sensibly (InvalidParameter naming it)."""
    if sel.kind not in KINDS:
        raise InvalidParameter(f"unknown selection rule {sel.kind}", supported=KINDS)
    for part in (sel.text, sel.upper or "") if sel.kind != "Value" else ():
        if len(part) > MAX_TEXT:
            raise InvalidParameter(f"a selection rule's text has at most {MAX_TEXT} "
                                   f"characters ({sel.kind})")
    if sel.kind in ("Prefix", "Glob", "Pattern") and not sel.text:
        raise InvalidParameter(f"an empty {sel.kind} would select every value; "
                               "leave the condition out instead")
    if sel.kind == "Range":
        _range(sel.text, sel.upper)
    elif sel.kind == "Cidr":
        _network(sel.text)
    elif sel.kind == "Pattern":
        _regex(sel.text)


def matches(sel: Selector, value: str) -> bool:
    if sel.kind == "Value":
        return value == sel.text
    if sel.kind == "Prefix":
        return value.startswith(sel.text)
    if sel.kind == "Glob":
        return fnmatchcase(value, sel.text)
    if sel.kind == "Range":
        return _range(sel.text, sel.upper).contains(value)
    if sel.kind == "Cidr":
        net = _network(sel.text)
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return address.version == net.version and address in net
    return _regex(sel.text).fullmatch(value) is not None


def specificity(sel: Selector) -> tuple[int, int]:
    """Sort key: greater is more specific (see the module's text)."""
    if sel.kind == "Value":
        return (_EXACT, 0)
    if sel.kind == "Range":
        return (_NARROW, -_range(sel.text, sel.upper).width)
    if sel.kind == "Cidr":
        return (_NARROW, -_network(sel.text).num_addresses)
    if sel.kind == "Prefix":
        return (_LITERAL, len(sel.text))
    if sel.kind == "Glob":
        return (_LITERAL, _glob_literals(sel.text))
    return (_PATTERN, 0)


# ---- ranges -----------------------------------------------------------------------------

_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()


def _alphabet(ch: str) -> str | None:
    for alphabet in (_DIGITS, _UPPER, _LOWER):
        if ch in alphabet:
            return alphabet
    return None


@dataclass(frozen=True)
class _Range:
    low: int
    high: int
    shape: tuple[str, ...] | None  # per position: its alphabet, or the literal character

    @property
    def width(self) -> int:
        return self.high - self.low + 1

    def contains(self, value: str) -> bool:
        n = self._rank(value)
        return n is not None and self.low <= n <= self.high

    def _rank(self, value: str) -> int | None:
        if self.shape is None:
            if not value or len(value) > MAX_DIGITS or not all(c in _DIGITS for c in value):
                return None
            return int(value)
        return _rank(self.shape, value)


def _is_number(text: str) -> bool:
    return bool(text) and all(c in _DIGITS for c in text) and (text == "0" or text[0] != "0")


def _rank(shape: tuple[str, ...], value: str) -> int | None:
    """The value's place among the strings of `shape` (None: not of that shape)."""
    if len(value) != len(shape):
        return None
    n = 0
    for ch, kind in zip(value, shape, strict=True):
        if len(kind) == 1:  # a literal character
            if ch != kind:
                return None
            continue
        pos = kind.find(ch)
        if pos < 0:
            return None
        n = n * len(kind) + pos
    return n


@lru_cache(maxsize=1024)
def _range(low: str, high: str | None) -> _Range:
    if high is None or not low or not high:
        raise InvalidParameter("a Range has a From and a To")
    if _is_number(low) and _is_number(high):
        if max(len(low), len(high)) > MAX_DIGITS:
            raise InvalidParameter(f"a numeric Range has at most {MAX_DIGITS} digits")
        r = _Range(int(low), int(high), None)
    else:
        if len(low) != len(high):
            raise InvalidParameter(f"Range {low}..{high}: an alphanumeric range's bounds have "
                                   "the same length (a numeric range's bounds have no "
                                   "leading zeros)")
        shape = []
        for i, (a, b) in enumerate(zip(low, high, strict=True)):
            kind = _alphabet(a)
            if kind != _alphabet(b) or (kind is None and a != b):
                raise InvalidParameter(
                    f"Range {low}..{high}: position {i + 1} is {a!r} in From and {b!r} in "
                    "To; the bounds have the same kind of character at each position "
                    "(digit, upper-case letter, lower-case letter, or the same character)")
            shape.append(kind or a)
        lo, hi = _rank(tuple(shape), low), _rank(tuple(shape), high)
        assert lo is not None and hi is not None
        r = _Range(lo, hi, tuple(shape))
    if r.low > r.high:
        raise InvalidParameter(f"Range {low}..{high} is empty: From comes after To")
    return r


# ---- networks, globs, patterns ----------------------------------------------------------

@lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidParameter(f"Cidr {text!r}: {exc}") from None


def _glob_literals(pattern: str) -> int:
    """Characters of a glob that match only themselves (outside * ? and [...])."""
    n, i = 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?":
            i += 1
            continue
        if ch == "[":  # a set, read as fnmatch reads it ("[" without "]" is literal)
            j = i + 1
            if pattern[j:j + 1] == "!":
                j += 1
            if pattern[j:j + 1] == "]":
                j += 1
            end = pattern.find("]", j)
            if end > 0:
                i = end + 1
                continue
        n += 1
        i += 1
    return n


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidParameter(f"invalid regular expression {pattern!r}: {exc}") from None
