"""Index keys derived from client input, bounded so no value can overflow a btree row.

Why: Postgres refuses an index entry above ~2.7 KB, and a refused row fails the whole transaction it
is in. The gateway limits identifiers to 1024 bytes, but keys are bounded here too, where they are
written, so a raised limit, an older queue row or a replay can never bring that failure back.
"""

from __future__ import annotations

import hashlib
from typing import Any

# Keys up to this many UTF-8 bytes are stored as they are (readable in SQL); longer ones as a hash.
MAX_KEY_BYTES = 512


def bounded(key: str) -> str:
    """``key`` itself, or ``sha256:<hex>`` of it when it is longer than MAX_KEY_BYTES.

    The same input always gives the same key, so grouping (per-user ordering, shards) is unchanged.
    """
    if len(key) * 4 <= MAX_KEY_BYTES:
        return key
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_KEY_BYTES:
        return key
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def dedupe_key(source: str, message_id: Any) -> str:
    """The dedupe key of a messageId: scoped to its source and to its JSON type.

    Two sources may use the same ids (each SDK numbers its own), and integer 1 and string "1" are
    different ids. The source's length prefix keeps ``("a:s", "1")`` and ``("a", "s:1")`` apart.
    """
    tag = "n" if type(message_id) is int else "s"
    return bounded(f"{len(source)}:{source}:{tag}:{message_id}")
