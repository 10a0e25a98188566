"""Which reflected columns hold secrets, by their names: reflection mode never serves them.

A column name is split into lower-cased words (``name_words``). It is a secret when its words,
joined, contain a long term (password, passwd, pwd, secret, token, apikey, privatekey), or
when one word is a short term (salt, otp, pin, hash, ...) or begins with "session".
``--show``/``--hide`` (``show``/``hide``) override the rule per column or per table.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from sqlalchemy import Table

from .errors import ConfigurationError

# Searched in the name's words joined (so across separators and case changes: api_key, apiKey,
# clientsecret, hashedpassword): long terms that are not parts of everyday words.
_SECRET_ANYWHERE = re.compile(r"password|passwd|pwd|secret|token|apikey|privatekey")
# Short terms, which are parts of everyday words (shipping, opinion, hashtag): whole words only.
_SECRET_WORDS = frozenset({"salt", "otp", "totp", "hotp", "pin", "hash", "hashed", "hashes"})
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
                         r"|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def name_words(name: str) -> list[str]:
    """The words of a column name, lower-cased: split at anything but letters and digits, at
    case changes and between letters and digits (``PASSWORD_HASH2`` -> password, hash, 2;
    ``userPIN`` -> user, pin; ``APIKey`` -> api, key)."""
    return [word.lower() for word in re.split(r"[\W_]+", _WORD_BREAK.sub(" ", name)) if word]


def is_secret_name(name: str) -> bool:
    """Whether a column named ``name`` is taken for a secret (the module docstring's rule)."""
    words = name_words(name)
    # "secretary" and "secretariat" hold no secret; the "|" keeps their neighbours apart.
    joined = "".join("|" if word.startswith("secretar") else word for word in words)
    return bool(_SECRET_ANYWHERE.search(joined)) or any(
        word in _SECRET_WORDS or word.startswith("session") for word in words)


def _overridden(table: Table, column: str, show: Collection[str],
                hide: Collection[str]) -> bool | None:
    """Hidden (True) or shown (False) as ``show``/``hide`` say, or None when they are silent:
    ``table.column`` first, then ``column``."""
    for entry in (f"{table.name}.{column}", column):
        if entry in show and entry in hide:
            raise ConfigurationError(
                f"{entry!r} is given to both --show and --hide; give it to one of them.")
        if entry in show or entry in hide:
            return entry in hide
    return None


def hidden_columns(table: Table, show: Collection[str] = (),
                   hide: Collection[str] = ()) -> tuple[str, ...]:
    """The columns of ``table`` that reflection never shows: those named like secrets, unless
    ``show`` names them, and those ``hide`` names. An entry is ``column`` (in every table) or
    ``table.column``, which wins over ``column``."""
    hidden = []
    for column in table.columns:
        name = str(column.name)
        override = _overridden(table, name, show, hide)
        if override or (override is None and is_secret_name(name)):
            hidden.append(name)
    return tuple(hidden)
