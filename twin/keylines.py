"""Lines of a TOML file's keys: tomllib gives the values but no positions, so an error about
`fas[2].unit_time_s` or `setup_effort.matrix[3][5]` finds its line here.

A small scan of text that tomllib has already parsed: every table, key, array entry and inline
table key is mapped to the line it starts on, as a path like pydantic's error locations
(`("fas", 2, "unit_time_s")`).
"""

from __future__ import annotations

import re
import tomllib

Path_ = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")


def key_lines(text: str) -> dict[Path_, int]:
    """Path -> line (1-based) of every table, key and array entry of valid TOML `text`."""
    return _Scan(text).document()


def line_of(lines: dict[Path_, int], loc: Path_) -> int | None:
    """The line of `loc`, else of its closest enclosing table or array (a missing key: its table)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


class _Scan:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.lines: dict[Path_, int] = {}

    def document(self) -> dict[Path_, int]:
        table: Path_ = ()
        tables: dict[Path_, int] = {}  # array-of-tables path -> entries so far
        while True:
            self._skip(newlines=True)
            if self.i >= len(self.s):
                return self.lines
            if self.s.startswith("[[", self.i):
                self.i += 2
                table = self._resolve(self._key(), tables, new_entry=True)
                self._expect("]]")
            elif self.s[self.i] == "[":
                self.i += 1
                table = self._resolve(self._key(), tables, new_entry=False)
                self._expect("]")
            else:
                self._pair(table)

    def _resolve(self, key: list[str], tables: dict[Path_, int], new_entry: bool) -> Path_:
        """A table header's key as a path: an array of tables along it stands for its last entry."""
        path: Path_ = ()
        for n, part in enumerate(key, 1):
            path += (part,)
            self.lines.setdefault(path, self.line)
            if n == len(key) and new_entry:
                tables[path] = tables.get(path, -1) + 1
            if path in tables:
                path += (tables[path],)
                self.lines.setdefault(path, self.line)
        return path

    def _pair(self, table: Path_) -> None:
        path = table
        for part in self._key():
            path += (part,)
            self.lines.setdefault(path, self.line)
        self._skip()
        self._expect("=")
        self._value(path)

    def _value(self, path: Path_) -> None:
        self._skip()
        char = self.s[self.i]
        if char == "[":
            self.i += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "]":
                    self.i += 1
                    return
                self.lines[(*path, index)] = self.line
                self._value((*path, index))
                self._skip(newlines=True)
                if self.s[self.i] == ",":
                    self.i += 1
                index += 1
        elif char == "{":
            self.i += 1
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "}":
                    self.i += 1
                    return
                self._pair(path)
                self._skip(newlines=True)
                if self.s[self.i] == ",":
                    self.i += 1
        elif char in "\"'":
            self._string()
        else:
            end = _SCALAR_END.search(self.s, self.i)
            self.i = end.start() if end else len(self.s)

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._skip()
            if self.s[self.i] in "\"'":
                parts.append(self._string())
            else:
                match = _BARE_KEY.match(self.s, self.i)
                if match is None:
                    raise ValueError(f"no key at line {self.line}")  # not valid TOML: tomllib said so
                parts.append(match[0])
                self.i = match.end()
            self._skip()
            if self.i < len(self.s) and self.s[self.i] == ".":
                self.i += 1
                continue
            return parts

    def _string(self) -> str:
        """Consume a string; its value (decoded by tomllib, so escapes are read as TOML reads them)."""
        quote = self.s[self.i]
        triple = self.s.startswith(quote * 3, self.i)
        start = self.i
        self.i += 3 if triple else 1
        while True:
            if quote == '"' and self.s[self.i] == "\\":
                self.i += 2
                continue
            if self.s.startswith(quote * 3 if triple else quote, self.i):
                self.i += 3 if triple else 1
                while triple and self.s.startswith(quote, self.i):  # up to two quotes end the content
                    self.i += 1
                break
            self.i += 1
        raw = self.s[start : self.i]
        self.line += raw.count("\n")
        return str(tomllib.loads(f"v = {raw}")["v"])

    def _skip(self, newlines: bool = False) -> None:
        """Past spaces and comments (and newlines, counting them, if `newlines`)."""
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in " \t\r":
                self.i += 1
            elif char == "#":
                end = self.s.find("\n", self.i)
                self.i = end if end >= 0 else len(self.s)
            elif char == "\n" and newlines:
                self.line += 1
                self.i += 1
            else:
                return

    def _expect(self, token: str) -> None:
        self._skip()
        if not self.s.startswith(token, self.i):
            raise ValueError(f"expected {token!r} at line {self.line}")  # not valid TOML
        self.i += len(token)
