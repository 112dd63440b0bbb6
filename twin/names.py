"""The one rule for names that travel into other formats: type names, station ids and the line name.

They become TOML keys (`week.toml`'s `[initial_stock]`), CSV cells (`plan.csv`, `sequence.csv`,
results), MQTT topic levels (`fas/<station>/events`), InfluxDB tag values and the InfluxQL regex of
the dashboards' line variable, file names and plot labels. A name is 1-64 characters: letters (any
script, e.g. 'Ü', 'é'), digits, '_', '-' and '.', starting with a letter or digit. That keeps out
whatever one of those formats gives a meaning (spaces, '/', '+', '#', quotes, ',', '=', '$', '|',
'\\', control characters), so a name that passes reads back unchanged from every one of them. The
line and the bus settings are checked against it when they are loaded.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

MAX_NAME_LENGTH = 64
NAME_RULE = (
    f"a name is 1-{MAX_NAME_LENGTH} characters: letters (any script), digits, '_', '-' and '.', "
    "starting with a letter or digit"
)
_PUNCTUATION = frozenset("_-.")


def _alphanumeric(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] == "L" or category == "Nd"


def _shown(char: str) -> str:
    if char == " ":
        return "a space"
    category = unicodedata.category(char)
    if category[0] == "C" or category[0] == "Z":
        return f"U+{ord(char):04X} (a control or space character)"
    if category[0] == "M":
        return f"U+{ord(char):04X} (a combining mark: write accented letters as one character, NFC)"
    return repr(char)


def name_problem(name: str) -> str | None:
    """What breaks the rule in `name`, or None if it keeps to it."""
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters"
    if not _alphanumeric(name[0]):
        return f"it starts with {_shown(name[0])}"
    for char in name:
        if not (_alphanumeric(char) or char in _PUNCTUATION):
            return f"it contains {_shown(char)}"
    return None


def check_name(name: str) -> str:
    """`name` if it keeps to the rule; else a ValueError stating what is wrong and the rule."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{problem}; {NAME_RULE}")
    return name


Name = Annotated[str, AfterValidator(check_name)]
"""A string field that keeps to the rule (pydantic)."""
