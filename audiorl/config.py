"""Typed configs: dataclasses loaded from YAML plus command-line overrides.

Every component declares one dataclass. Each field is typed, has a default and ``metadata={"help":
...}``: that help is the single source for ``--help`` (``format_help``) and the docs. Choices are
``typing.Literal``; sections are nested dataclasses. ``__post_init__`` checks cross-field invariants
and says how to fix a bad value.

Precedence (Kaldi ``parse_options.sh``): defaults < YAML file < command line. Overrides are written
``--section.field value``, ``--section.field=value`` or ``section.field=value``; dashes in names are
read as underscores. A YAML file may start from others: a top-level ``base: other.yaml`` (or a list; paths
relative to the file) is merged first, so a tuning config holds only what it changes. Unknown keys are errors
naming the key, where it came from and the closest valid names. Booleans must be ``true`` or ``false``.

A deprecated field keeps working: ``deprecated_field("new_name", remove_in="0.3", help=...)`` marks
it; setting it emits a ``FutureWarning`` naming the removal version and forwards the value to the
replacement (at load time for YAML/CLI; call ``forward_deprecated(self)`` in ``__post_init__`` so
that direct Python construction forwards too).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import tempfile
import textwrap
import types
import typing
import warnings
from typing import Any, Iterable, Literal, TextIO, Union

import yaml

__all__ = [
    "ConfigError", "option", "deprecated_field", "forward_deprecated", "load_config", "from_dict", "to_dict",
    "save_config", "format_help", "print_config", "parse_cli", "flatten", "yaml_chain", "read_config_yaml",
]

_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A bad config key or value; the message names the key, its source and the fix."""


def option(default: Any = _MISSING, help: str = "", *, default_factory: Any = _MISSING, **meta: Any):
    """Shorthand for ``field(default=..., metadata={"help": ...})``; mutable defaults need a factory."""
    if default is _MISSING and default_factory is _MISSING:
        raise TypeError("option() needs a default or a default_factory: every config field has a default")
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help, **meta})


def deprecated_field(replacement: str, remove_in: str, help: str = ""):
    """A field kept for old configs; its value (when not None) is forwarded to ``replacement``."""
    text = f"Deprecated: use '{replacement}' instead (removed in {remove_in}). {help}".strip()
    return dataclasses.field(default=None, metadata={
        "help": text, "deprecated": {"replacement": replacement, "remove_in": remove_in}})


def _deprecation(f: dataclasses.Field) -> dict | None:
    return f.metadata.get("deprecated")


def _warn_deprecated(name: str, info: dict, where: str) -> None:
    warnings.warn(f"config key '{name}' ({where}) is deprecated and will be removed in "
                  f"{info['remove_in']}: use '{info['replacement']}' instead (value forwarded)",
                  FutureWarning, stacklevel=3)


def forward_deprecated(obj: Any, prefix: str = "") -> None:
    """Call from ``__post_init__``: forward deprecated fields set in Python code to their replacement."""
    for f in dataclasses.fields(obj):
        info = _deprecation(f)
        value = getattr(obj, f.name)
        if info is None or value is None:
            continue
        _warn_deprecated(prefix + f.name, info, "python")
        *parents, leaf = info["replacement"].split(".")
        target = obj
        for p in parents:
            target = getattr(target, p)
        setattr(target, leaf, value)
        setattr(obj, f.name, None)


# ----------------------------------------------------------------------------------------------------
# Type introspection and conversion
# ----------------------------------------------------------------------------------------------------

def _hints(cls: type) -> dict[str, Any]:
    # get_type_hints resolves the string annotations that `from __future__ import annotations` leaves.
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def type_name(tp: Any) -> str:
    """Readable type for help text: ``{none,bf16,fp16}``, ``int|None``, ``list[float]``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in args) + "}"
    if _is_union(tp):
        return "|".join("None" if a is type(None) else type_name(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _parse_str(value: str) -> Any:
    """Parse a command-line string as YAML (lists, mappings); keep the string if that fails."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def convert(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from YAML or a command-line string) to type ``tp``; ``where`` names the key."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad(expect: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expect}, got {value!r}")

    if tp is Any or tp is object:
        return value
    if _is_union(tp):
        if type(None) in args and (value is None or (isinstance(value, str)
                                                     and value.lower() in ("none", "null", "~"))):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise bad(type_name(tp))
    if value is None:
        raise ConfigError(f"{where}: may not be null (type {type_name(tp)}); give a value")
    if origin is Literal:
        for a in args:
            # Command-line values arrive as strings: compare by string form as well (e.g. Literal[1, 2]).
            if value == a or (isinstance(value, str) and not isinstance(a, str) and value == str(a)):
                return a
        allowed = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{where}: {value!r} is not one of the allowed values {allowed}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str):
            value = _parse_str(value)
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad(f"a mapping for section {type_name(tp)}")
        return _build(tp, value, where + ".", {})
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad("true or false")
    if tp is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise bad("an integer") from None
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if f.is_integer():
            return int(f)
        raise bad("an integer")
    if tp is float:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            # YAML 1.1 reads "1e-3" (no dot) as a string; float() takes it.
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad("a string")
    if origin in (list, tuple):
        if isinstance(value, str):
            parsed = _parse_str(value)
            value = parsed if isinstance(parsed, list) else [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad(type_name(tp))
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise bad(f"{len(args)} values ({type_name(tp)})")
            return tuple(convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        elem = args[0] if args else Any
        out = [convert(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if isinstance(value, str):
            value = _parse_str(value)
        if not isinstance(value, dict):
            raise bad(type_name(tp))
        kt, vt = args if args else (Any, Any)
        return {convert(k, kt, f"{where}.key"): convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)  # e.g. pathlib.Path
        except Exception:
            raise bad(type_name(tp)) from None
    return value


# ----------------------------------------------------------------------------------------------------
# Key checking, merging, building
# ----------------------------------------------------------------------------------------------------

def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted field name of a config class (sections included)."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += all_keys(hints[f.name], prefix + f.name + ".")
    return out


def _unknown_key_error(cls: type, root: type, dotted: str, source: str) -> ConfigError:
    leaf = dotted.rsplit(".", 1)[-1]
    prefix = dotted[: len(dotted) - len(leaf)]
    local = [f.name for f in dataclasses.fields(cls)]
    guesses = [prefix + m for m in difflib.get_close_matches(leaf, local, n=3, cutoff=0.6)]
    # Also look everywhere: a key put in the wrong section ("lr" at top level instead of "optim.lr").
    for k in all_keys(root):
        tail = k.rsplit(".", 1)[-1]
        if k not in guesses and (tail == leaf or difflib.SequenceMatcher(None, tail, leaf).ratio() > 0.85):
            guesses.append(k)
    hint = f"; did you mean {', '.join(repr(g) for g in guesses[:4])}?" if guesses else ""
    section = f"section '{prefix[:-1]}'" if prefix else type_name(cls)
    return ConfigError(f"unknown key '{dotted}' in {source} ({section} of {type_name(root)}){hint} "
                       f"See --help for every key.")


def _field_map(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _merge(cls: type, root: type, dst: dict, src: dict, source: str, prefix: str, sources: dict) -> None:
    """Merge ``src`` into ``dst`` after checking every key; ``sources`` records where each value came from."""
    if not isinstance(src, dict):
        raise ConfigError(f"{source}: section '{prefix[:-1] or '<top>'}' must be a mapping, got {src!r}")
    fields, hints = _field_map(cls), _hints(cls)
    for key, value in src.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise _unknown_key_error(cls, root, prefix + name, source)
        info = _deprecation(fields[name])
        if info is not None and value is not None:
            _warn_deprecated(prefix + name, info, source)
            *parents, leaf = info["replacement"].split(".")
            new = {leaf: value}
            for p in reversed(parents):
                new = {p: new}
            _merge(cls, root, dst, new, f"{source} (via deprecated '{prefix + name}')", prefix, sources)
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            sub = dst.setdefault(name, {})
            if not isinstance(sub, dict):
                sub = dst[name] = {}
            _merge(tp, root, sub, value, source, prefix + name + ".", sources)
        else:
            dst[name] = value
            sources[prefix + name] = source


def _build(cls: type, data: dict, prefix: str, sources: dict, base: Any = None) -> Any:
    """Instantiate ``cls`` from ``data``; values not given come from ``base`` (the parent's default for
    this section, which may differ from the class defaults) or else from the class defaults."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key = prefix + f.name
        where = f"{key} (from {sources[key]})" if key in sources else key
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(data[f.name], dict):
            sub_base = getattr(base, f.name) if base is not None else _default_of(f)
            kwargs[f.name] = _build(tp, data[f.name], key + ".", sources,
                                    sub_base if isinstance(sub_base, tp) else None)
        else:
            kwargs[f.name] = convert(data[f.name], tp, where)
    if base is not None:
        return dataclasses.replace(base, **kwargs)  # re-runs __post_init__ on the merged values
    return cls(**kwargs)


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, str]]:
    """``["--a.b", "1", "--c=2", "d.e=3"]`` -> ``[("a.b", "1"), ("c", "2"), ("d.e", "3")]``."""
    toks, out, i = list(overrides), [], 0
    while i < len(toks):
        tok = toks[i]
        if tok.startswith("--"):
            body = tok[2:]
            if "=" in body:
                key, value = body.split("=", 1)
            elif i + 1 < len(toks) and not toks[i + 1].startswith("--"):
                key, value = body, toks[i + 1]
                i += 1
            else:
                raise ConfigError(f"command line: option '{tok}' needs a value "
                                  f"(booleans too: '{tok} true' or '{tok} false')")
        elif "=" in tok:
            key, value = tok.split("=", 1)
        else:
            raise ConfigError(f"command line: cannot parse '{tok}': write '--section.field value' "
                              f"or 'section.field=value'")
        out.append((key.replace("-", "_"), value))
        i += 1
    return out


def read_yaml(path: str) -> Any:
    """The parsed contents of a YAML file ({} when empty); invalid YAML is a ConfigError naming the file."""
    with open(path, encoding="utf-8") as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return {} if raw is None else raw


BASE_KEY = "base"


def yaml_chain(path: str | os.PathLike, _stack: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """``[(file, mapping), ...]`` to merge in order: the YAMLs that ``path``'s top-level ``base:`` names (a path or
    a list of paths, relative to ``path``'s folder; their own bases first, recursively), then ``path`` itself
    without its ``base`` key. A tuning file is then its base plus the values it changes, not a copy of the base.
    Missing files, non-mapping files, a bad ``base`` value and include cycles are ConfigErrors naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        where = f" (named by 'base:' in {_stack[-1]})" if _stack else ""
        raise ConfigError(f"config file {path} does not exist{where}")
    real = os.path.realpath(path)
    if real in _stack:
        cycle = " -> ".join([*_stack[_stack.index(real):], real])
        raise ConfigError(f"{path}: 'base:' includes form a cycle ({cycle}); remove one of them")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        bases = []
    elif isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: 'base:' must be a path or a list of paths (relative to {path}'s folder), "
                          f"got {bases!r}")
    chain: list[tuple[str, dict]] = []
    for b in bases:
        full = b if os.path.isabs(b) else os.path.join(os.path.dirname(path), b)
        chain += yaml_chain(os.path.normpath(full), (*_stack, real))
    return chain + [(path, data)]


def read_config_yaml(path: str | os.PathLike) -> dict:
    """The raw mapping of a config file with its ``base:`` chain folded in (nested mappings merged key by key, other
    values replaced by the later file), for readers that take one section of a file without its dataclass."""
    def fold(dst: dict, src: dict) -> dict:
        for k, v in src.items():
            dst[k] = fold(dict(dst[k]), v) if isinstance(v, dict) and isinstance(dst.get(k), dict) else v
        return dst
    out: dict = {}
    for _, data in yaml_chain(path):
        fold(out, data)
    return out


def load_config(cls: type, yaml_path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Any:
    """Build ``cls`` from its defaults, then ``yaml_path`` (after the files its ``base:`` names, see ``yaml_chain``),
    then ``overrides`` (highest priority)."""
    data: dict = {}
    sources: dict[str, str] = {}
    if yaml_path is not None:
        for path, raw in yaml_chain(yaml_path):
            _merge(cls, cls, data, raw, path, "", sources)
    for key, value in parse_overrides(overrides):
        nested: Any = _parse_str(value) if _wants_structure(cls, key) else value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        _merge(cls, cls, data, nested, "the command line", "", sources)
    return _build(cls, data, "", sources)


def from_dict(cls: type, data: dict, source: str = "a dict") -> Any:
    """Build ``cls`` from its defaults and the nested dict ``data`` (e.g. one section of a saved config.yaml), with
    the same checks and error messages as ``load_config``; ``source`` names where ``data`` came from."""
    merged: dict = {}
    sources: dict[str, str] = {}
    _merge(cls, cls, merged, data or {}, source, "", sources)
    return _build(cls, merged, "", sources)


def _wants_structure(cls: type, key: str) -> bool:
    """Whether the field at dotted ``key`` is a whole section (then a CLI value is parsed as YAML)."""
    tp: Any = cls
    for part in key.split("."):
        if not dataclasses.is_dataclass(tp):
            return False
        tp = _hints(tp).get(part)
        if tp is None:
            return False
    return dataclasses.is_dataclass(tp)


# ----------------------------------------------------------------------------------------------------
# Output: dicts, YAML, help
# ----------------------------------------------------------------------------------------------------

def to_dict(cfg: Any) -> dict:
    """The config as plain YAML-safe data (tuples become lists; unset deprecated fields are dropped)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if not (_deprecation(f) and getattr(v, f.name) is None)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        return v
    return plain(cfg)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def dump_yaml(cfg: Any) -> str:
    data = cfg if isinstance(cfg, dict) else to_dict(cfg)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (temporary file + rename). An identical existing file is
    left untouched, so that its mtime keeps saying when the config last changed (stage scripts rely on it)."""
    path = os.fspath(path)
    text = dump_yaml(cfg)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".config.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a config is for everyone to read
    os.replace(tmp, path)


def print_config(cfg: Any, stream: TextIO | None = None) -> None:
    """Write the resolved config as YAML to ``stream`` (stdout by default): ``--print_config``."""
    (stream or sys.stdout).write(dump_yaml(cfg))


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return None


def format_help(cls: type, prefix: str = "", width: int = 100, defaults: Any = None) -> str:
    """Every field with its type, default and help, grouped by section (nested dataclass).

    ``defaults`` is the instance whose values are shown (a parent's default for a section may differ
    from the section class's own defaults); None means the class defaults.
    """
    hints = _hints(cls)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    title = f"[{prefix[:-1]}] " if prefix else ""
    lines = [f"{title}{cls.__name__}: {doc}".rstrip(": "), ""]
    sections = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        default = getattr(defaults, f.name) if defaults is not None else _default_of(f)
        if dataclasses.is_dataclass(tp):
            sections.append((f, tp, default))
            continue
        shown = yaml.safe_dump(to_dict(default), default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"  --{prefix}{f.name} {type_name(tp)}  (default: {shown})")
        help_text = f.metadata.get("help") or "(no help)"
        lines += textwrap.wrap(help_text, width=width, initial_indent="      ", subsequent_indent="      ")
    for f, tp, default in sections:
        lines.append("")
        lines.append(format_help(tp, prefix + f.name + ".", width, default).rstrip())
    return "\n".join(lines) + "\n"


def parse_cli(cls: type, argv: list[str] | None = None, prog: str | None = None) -> Any:
    """Entry-point helper: ``--config FILE``, overrides, ``--help`` and ``--print_config``.

    Exits 0 after ``--help``/``--print_config`` and 2 (usage error) with a ``prog: error:`` line on
    stderr for a bad key or value.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0])
    if "--help" in argv or "-h" in argv:
        sys.stdout.write(f"usage: {prog} [--config FILE] [--print_config] [--section.field VALUE ...]\n\n")
        sys.stdout.write(format_help(cls))
        raise SystemExit(0)
    want_print = "--print_config" in argv
    argv = [a for a in argv if a != "--print_config"]
    yaml_path, rest, i = None, [], 0
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            yaml_path, i = argv[i + 1], i + 2
        elif argv[i].startswith("--config="):
            yaml_path, i = argv[i].split("=", 1)[1], i + 1
        else:
            rest.append(argv[i])
            i += 1
    try:
        cfg = load_config(cls, yaml_path, rest)
    except ValueError as e:  # ConfigError, or a __post_init__ check: both are usage errors
        sys.stderr.write(f"{prog}: error: {e}\n")
        raise SystemExit(2) from None
    if want_print:
        print_config(cfg)
        raise SystemExit(0)
    return cfg
