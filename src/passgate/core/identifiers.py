"""Identifiers people type - usernames and email addresses - and the one form they are compared in.

Storage keys and look-ups, rate-limit counters and decoy credentials all use `normalize_identifier`, so
spellings that reach the same account ("Gus", "GUS", "Gus" in fullwidth letters) share its limits and decoy.
"""

from __future__ import annotations

import unicodedata


def normalize_identifier(text: str) -> str:
    """NFKC, case folded, trimmed: the form in which identifiers are unique, looked up and counted.

    Always applied to the text as typed (or as cleaned for display); stored normalized usernames were made
    by this exact formula, so it must not change without a migration that recomputes them.
    """
    return unicodedata.normalize("NFKC", text).casefold().strip()
