"""Reading and writing the text files of a Kaldi data directory.

Every file in a data dir is a table of lines ``<key> <value>``, sorted by key in the C locale (byte
order, which for UTF-8 equals code-point order, so Python's ``sorted`` on ``str`` agrees with
``LC_ALL=C sort``), unique by key, and newline-terminated. Readers here keep the file name and the
line number of every entry so that errors can point at them; writers sort, write atomically
(temporary file + rename) and end every line with ``\\n``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from audiorl.fileio import atomic_write_bytes


class DataDirError(Exception):
    """A problem with a data-dir file; the message names the file, the line and the fix."""


def c_sort_key(key: str) -> bytes:
    """Sort key matching ``LC_ALL=C sort``: plain bytes of the UTF-8 encoding."""
    return key.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Entry:
    """One line of a table file: its key, the rest of the line, and where it came from."""

    key: str
    value: str
    path: str
    lineno: int


def _decode(raw: bytes, path: str, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataDirError(
            f"{path}:{lineno}: not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
            f"convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 {path}`"
        ) from None


def read_entries(path: str, *, allow_empty_value: bool = False) -> list[Entry]:
    """Read ``<key> <value>`` lines in file order, with no checks beyond well-formedness.

    Raises DataDirError for a missing file, non-UTF-8 bytes, an empty line, or (unless
    ``allow_empty_value``) a line with a key and no value. Leading/trailing whitespace of the value
    is stripped; internal whitespace is kept as written. CR characters are kept, so that validation
    can report CRLF files instead of silently accepting them.
    """
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file")
    out: list[Entry] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode(raw.rstrip(b"\n"), path, lineno)
            parts = line.strip(" \t").split(maxsplit=1) if line.strip(" \t\r") else []
            if not parts:
                raise DataDirError(f"{path}:{lineno}: empty line; delete it")
            key = parts[0]
            value = parts[1].strip(" \t") if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: key '{key}' has no value; expected '<key> <value>'")
            out.append(Entry(key, value, path, lineno))
    return out


def read_table(path: str, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a table file into an insertion-ordered dict; a duplicate key is an error."""
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for e in read_entries(path, allow_empty_value=allow_empty_value):
        if e.key in table:
            raise DataDirError(
                f"{path}:{e.lineno}: duplicate key '{e.key}' (first on line {first_line[e.key]}); "
                f"keep one of them, e.g. with utils/fix_data_dir.sh"
            )
        table[e.key] = e.value
        first_line[e.key] = e.lineno
    return table


def read_list_table(path: str) -> dict[str, list[str]]:
    """Read a table whose value is a whitespace-separated list (spk2utt, keywords, ...)."""
    return {k: v.split() for k, v in read_table(path, allow_empty_value=True).items()}


def write_table(path: str, table: Mapping[str, object] | Iterable[tuple[str, object]], *, sort: bool = True) -> None:
    """Write ``<key> <value>`` lines, sorted in the C locale, atomically.

    Values that are lists/tuples are joined by single spaces (spk2utt, keywords, int sequences).
    A key containing whitespace or an empty key is refused, as Kaldi cannot read it back.
    """
    items = list(table.items()) if isinstance(table, Mapping) else list(table)
    if sort:
        items.sort(key=lambda kv: c_sort_key(kv[0]))
    lines = []
    for key, value in items:
        if not key or any(c.isspace() for c in key):
            raise DataDirError(f"{path}: refusing to write key {key!r}: keys must be non-empty and contain no whitespace")
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        value = str(value)
        if "\n" in value:
            raise DataDirError(f"{path}: value for key '{key}' contains a newline")
        lines.append(f"{key} {value}".rstrip(" ") + "\n")
    atomic_write_bytes(path, "".join(lines).encode("utf-8"))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk; speakers and their utterances in C-locale order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(spk2utt.items(), key=lambda kv: c_sort_key(kv[0])))


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Iterable[str]]) -> dict[str, str]:
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in utt2spk:
                raise DataDirError(f"spk2utt: utterance '{utt}' listed under both '{utt2spk[utt]}' and '{spk}'")
            utt2spk[utt] = spk
    return dict(sorted(utt2spk.items(), key=lambda kv: c_sort_key(kv[0])))
