"""The console's settings and its texts in Chinese and English (``console.toml``)."""
from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = tomllib.loads(Path(__file__).with_name("console.toml").read_text(encoding="utf-8"))
LANGS = ("zh", "en")


def text(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang`` (zh or en); an unknown key fails loudly."""
    return CONFIG["texts"][key][LANGS.index(lang) if lang in LANGS else 0]
