"""Text normalisation applied to both reference and hypothesis before scoring.

WER numbers are only comparable when both sides went through the same normalisation, so every option
is a named field of ``NormConfig`` (saved into ``result.json`` next to the numbers) and the common
combinations are named presets. The steps run in a fixed order, documented on ``Normalizer``.

``tokenize`` turns a normalised string into scoring units: words (split on whitespace) or characters
(spaces dropped, as CER on Chinese/Japanese is normally computed; ``keep_space`` keeps word
boundaries as ESPnet's ``<space>`` token instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from audiorl.data.kaldi import read_table

Unit = Literal["word", "char"]
SPACE_TOKEN = "<space>"  # ESPnet's name for a word boundary in char-level scoring


@dataclass(frozen=True)
class NormConfig:
    # --- Unicode ---
    nfkc: bool = field(default=False, metadata={"help": "Unicode NFKC: full-width letters, digits, punctuation and "
                                                "the ideographic space become their half-width forms. Turn on for "
                                                "Chinese/Japanese, where ASR output mixes both widths."})
    lowercase: bool = field(default=False, metadata={"help": "Lower-case everything (casefold). Also applies to "
                                                     "mapping-file keys and remove_tokens."})
    # --- Tokens that are not words ---
    remove_bracketed: bool = field(default=False, metadata={"help": "Delete tags like <unk>, <noise>, [laughter], "
                                                            "wherever they occur (also glued to CJK text)."})
    remove_tokens: tuple[str, ...] = field(default=(), metadata={"help": "Extra tokens to delete (comma-separated on "
                                                                  "the command line), e.g. 'uh,um'. Matched as whole "
                                                                  "words, not inside other words."})
    mapping_file: str | None = field(default=None, metadata={"help": "Kaldi-style table '<word> <replacement ...>' "
                                                             "applied word by word (an empty replacement deletes the "
                                                             "word), e.g. for spelling variants (a GLM-lite)."})
    # --- Punctuation and spacing ---
    strip_punct: bool = field(default=False, metadata={"help": "Replace Unicode punctuation (category P*) with a "
                                                       "space; an apostrophe inside a word (don't) is kept."})

    def __post_init__(self) -> None:
        # Accept a list from YAML/JSON, but store a tuple so the config stays hashable and comparable.
        if not isinstance(self.remove_tokens, tuple):
            object.__setattr__(self, "remove_tokens", tuple(self.remove_tokens))
        for tok in self.remove_tokens:
            if not tok or any(c.isspace() for c in tok):
                raise ValueError(f"NormConfig.remove_tokens: {tok!r} must be a non-empty token without spaces")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Named presets. 'none' still collapses whitespace (scoring splits on it anyway).
PRESETS: dict[str, NormConfig] = {
    "none": NormConfig(),
    # Kaldi/ESPnet default scoring: leave the text alone but drop <unk>/[noise]-style tags.
    "kaldi": NormConfig(remove_bracketed=True),
    "en": NormConfig(nfkc=True, lowercase=True, remove_bracketed=True, strip_punct=True),
    # Chinese CER: width-fold, drop punctuation (，。！？ are punctuation), lower-case embedded English.
    "zh": NormConfig(nfkc=True, lowercase=True, remove_bracketed=True, strip_punct=True),
}

_BRACKETED = re.compile(r"<[^<>\s]*>|\[[^\[\]\s]*\]")
# Apostrophes between two letters survive punctuation stripping; U+2019 is folded to ASCII first.
_APOSTROPHE_IN_WORD = re.compile(r"(?<=\w)'(?=\w)")
_WS = re.compile(r"\s+")


def _token_pattern(tok: str) -> str:
    # Only demand a word boundary on a side where the token itself starts/ends with a word character:
    # 'uh' must not match inside 'uhm', while '<sil>' should match even when glued to Chinese text.
    left = r"(?<!\w)" if re.match(r"\w", tok[0]) else ""
    right = r"(?!\w)" if re.match(r"\w", tok[-1]) else ""
    return left + re.escape(tok) + right


def load_mapping(path: str) -> dict[str, list[str]]:
    """Read a mapping table: each line '<word> [<replacement words>]'; no replacement deletes the word."""
    return {k: v.split() for k, v in read_table(path, allow_empty_value=True).items()}


class Normalizer:
    """Callable str -> str built once from a NormConfig (regexes compiled, mapping file loaded).

    Order of steps, chosen so that each step sees what it expects:
    1. NFKC (so full-width '＜ｕｎｋ＞' and 'Ａ' are seen as ASCII by the steps below);
    2. lowercase;
    3. delete bracketed tags and ``remove_tokens`` (before punctuation stripping, which would turn
       '[noise]' into 'noise', a real word);
    4. word mapping;
    5. punctuation to spaces;
    6. collapse whitespace and strip.
    """

    def __init__(self, cfg: NormConfig | None = None, mapping: dict[str, list[str]] | None = None):
        self.cfg = cfg or NormConfig()
        mp = dict(mapping or {})
        if self.cfg.mapping_file:
            mp.update(load_mapping(self.cfg.mapping_file))
        if self.cfg.lowercase:
            mp = {k.casefold(): [w.casefold() for w in v] for k, v in mp.items()}
        self.mapping = mp
        toks = [t.casefold() if self.cfg.lowercase else t for t in self.cfg.remove_tokens]
        # Longest first so that a token that contains another is removed whole.
        toks.sort(key=len, reverse=True)
        self._remove = re.compile("|".join(_token_pattern(t) for t in toks)) if toks else None

    def __call__(self, text: str) -> str:
        c = self.cfg
        if c.nfkc:
            text = unicodedata.normalize("NFKC", text)
        if c.lowercase:
            text = text.casefold()
        if c.remove_bracketed:
            text = _BRACKETED.sub(" ", text)
        if self._remove is not None:
            text = self._remove.sub(" ", text)
        if self.mapping:
            out: list[str] = []
            for w in text.split():
                out.extend(self.mapping.get(w, [w]))
            text = " ".join(out)
        if c.strip_punct:
            text = _strip_punct(text)
        return _WS.sub(" ", text).strip()


def _strip_punct(text: str) -> str:
    text = text.replace("\u2019", "'")
    # Protect in-word apostrophes with a character that is not punctuation, then restore them.
    text = _APOSTROPHE_IN_WORD.sub("\x00", text)
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return text.replace("\x00", "'")


def tokenize(text: str, unit: Unit = "word", *, keep_space: bool = False) -> list[str]:
    """Split a normalised string into scoring units.

    'word': whitespace-separated tokens. 'char': every non-space character is a token (CER); with
    ``keep_space`` each run of whitespace between words becomes one ``<space>`` token, as ESPnet does.
    Bracketed tags that survived normalisation stay whole in 'char' mode, so '<unk>' is one unit.
    """
    if unit == "word":
        return text.split()
    if unit != "char":
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    out: list[str] = []
    for i, word in enumerate(text.split()):
        if keep_space and i:
            out.append(SPACE_TOKEN)
        pos = 0
        for m in _BRACKETED.finditer(word):
            out.extend(word[pos:m.start()])
            out.append(m.group())
            pos = m.end()
        out.extend(word[pos:])
    return out


def resolve_norm(norm: NormConfig | str | None) -> NormConfig:
    """Accept a NormConfig, a preset name or None ('none')."""
    if norm is None:
        return PRESETS["none"]
    if isinstance(norm, NormConfig):
        return norm
    if norm not in PRESETS:
        raise ValueError(f"unknown normalisation preset {norm!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[norm]


# ----------------------------------------------------------------------------------------------
# Command-line options generated from the dataclass, so help text lives only in the metadata above.
# ----------------------------------------------------------------------------------------------

def str2bool(s: str) -> bool:
    if s not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected 'true' or 'false', got {s!r}")
    return s == "true"


def add_norm_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--norm PRESET`` and one ``--norm.<field>`` override per NormConfig field."""
    parser.add_argument("--norm", default="none", choices=sorted(PRESETS),
                        help="normalisation preset; --norm.<field> options override single fields")
    for f in dataclasses.fields(NormConfig):
        kind = str2bool if f.type in ("bool", bool) else str
        parser.add_argument(f"--norm.{f.name}", dest=f"norm__{f.name}", type=kind, default=None,
                            metavar="true|false" if kind is str2bool else f.name.upper(), help=f.metadata.get("help"))


def norm_from_args(args: argparse.Namespace) -> NormConfig:
    cfg = resolve_norm(args.norm)
    overrides = {}
    for f in dataclasses.fields(NormConfig):
        v = getattr(args, f"norm__{f.name}")
        if v is None:
            continue
        if f.name == "remove_tokens":
            v = tuple(t for t in v.split(",") if t)
        overrides[f.name] = v
    return dataclasses.replace(cfg, **overrides)
