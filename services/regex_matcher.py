"""The production regex matcher: the third-party `regex` module with a per-search time bound."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import regex

from domain.rules import RegexTimeout, RuleError

#: How many compiled patterns stay cached per process.
CACHE_SIZE = 512


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(pattern: str) -> regex.Pattern[str]:
    """The pattern compiled case-insensitively; raises RuleError when it is invalid."""
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except (regex.error, OverflowError, RecursionError, ValueError) as error:
        raise RuleError(f"invalid regular expression: {error}") from None


@dataclass(frozen=True)
class TimedMatcher:
    """A RegexMatcher whose searches are cut off after `timeout_seconds`, so a hostile pattern cannot hang a worker."""

    timeout_seconds: float = 0.05

    def __post_init__(self) -> None:
        """Refuse a time bound that is not a positive, finite number of seconds."""
        if not math.isfinite(self.timeout_seconds) or self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be a positive, finite number")

    def compile_check(self, pattern: str) -> None:
        """Raise RuleError if `regex` cannot compile `pattern`."""
        _compile(pattern)

    def search(self, pattern: str, text: str) -> bool:
        """Whether `pattern` matches in `text`, ignoring case; raises RegexTimeout when the time is up."""
        compiled = _compile(pattern)
        try:
            return compiled.search(text, timeout=self.timeout_seconds) is not None
        except TimeoutError:
            raise RegexTimeout(f"regex search cut off after {self.timeout_seconds} s") from None
