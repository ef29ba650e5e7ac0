"""Model sources on the Hugging Face hub: ``hf:ORG/NAME[@REVISION]``.

Such a source is resolved by ``transformers`` through its local cache: downloaded when
the machine is online, read from the cache alone when ``HF_HUB_OFFLINE=1``. Weights are
only ever read from safetensors files and no code of the repository is run.
"""
from __future__ import annotations

import re

from ..errors import ConfigError

PREFIX = "hf:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(source: str) -> bool:
    return source.startswith(PREFIX)


def parse_hub_id(source: str) -> tuple[str, str | None]:
    """(repository id, revision or None) of ``hf:ORG/NAME[@REVISION]``."""
    if not is_hub_id(source):
        raise ConfigError(f"model {source!r}: a hub model is named {PREFIX}ORG/NAME[@REVISION]")
    repo, _, revision = source[len(PREFIX):].partition("@")
    if not _HUB_ID.match(repo) or (revision == "" and "@" in source):
        raise ConfigError(f"model {source!r}: a hub model is named {PREFIX}ORG/NAME[@REVISION]"
                          f", e.g. {PREFIX}facebook/mask2former-swin-tiny-cityscapes-panoptic")
    return repo, revision or None
