"""FilterLogEvents' `filterPattern`, the term form of CloudWatch's syntax: a pure matcher over one message.

`ERROR timeout` matches messages holding both terms; `"connection reset"` an exact phrase; `?ERROR ?WARN`
either of them; `-DEBUG` excludes. Terms are case-sensitive, as in CloudWatch. JSON (`{ $.x = 1 }`) and
space-delimited (`[ip, user, ...]`) patterns are refused with InvalidParameterException rather than
silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from zeroserve.errors import ValidationError

_TOKEN = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')

Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class _Terms:
    required: tuple[str, ...]
    any_of: tuple[str, ...]
    excluded: tuple[str, ...]

    def __call__(self, message: str) -> bool:
        return (
            all(term in message for term in self.required)
            and (not self.any_of or any(term in message for term in self.any_of))
            and not any(term in message for term in self.excluded)
        )


def compile_pattern(pattern: str | None) -> Matcher:
    text = (pattern or "").strip()
    if text.startswith(("{", "[")):
        raise ValidationError(
            "zeroserve supports term filter patterns only (e.g. 'ERROR', '\"exact phrase\"', '?a ?b', "
            "'-DEBUG'), not JSON or space-delimited patterns."
        )
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        found = _TOKEN.match(text, position)
        assert found is not None  # a non-space character always starts a bare term at least
        prefix, quoted, bare = found.groups()
        if bare is not None and bare.startswith('"'):
            raise ValidationError(f"Unterminated quote in filter pattern at '{bare[:50]}'")
        term = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        position = found.end()
        if not term:
            continue
        {"": required, "?": any_of, "-": excluded}[prefix].append(term)
    return _Terms(tuple(required), tuple(any_of), tuple(excluded))
