"""The internal token that services on one machine share through the data dir, created once at start-up.

In Kubernetes WAYLINE_INTERNAL_TOKEN comes from a Secret. On one machine (`wayline up`, a developer running
a service by hand) the first service to start creates `<WAYLINE_DATA_DIR>/internal-token` and every other
one reads it. That is a side effect, so it happens here, called once by the server's `main`, and never
when settings are read.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from wayline.common.settings import ServiceSettings

__all__ = ["INTERNAL_TOKEN_FILE", "load_or_create_internal_token", "with_internal_token"]

INTERNAL_TOKEN_FILE = "internal-token"  # noqa: S105 - a file name, not a secret

S = TypeVar("S", bound=ServiceSettings)


def with_internal_token(settings: S) -> S:
    """`settings` with the internal token filled in: the environment's, else the data dir's (created, with
    the data dir, if no service has yet)."""
    if settings.internal_token is not None and settings.internal_token.get_secret_value():
        return settings
    token = load_or_create_internal_token(settings.data_dir)
    return settings.model_copy(update={"internal_token": SecretStr(token)})


def load_or_create_internal_token(data_dir: Path) -> str:
    """Read the suite's internal token from the data dir, creating it (mode 0600) if no process has yet.

    Creation uses O_EXCL so that services starting together agree on one token.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / INTERNAL_TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            token = path.read_text().strip()
            if token:
                return token
            # Another process created the file and is about to write it.
            time.sleep(0.01)
        raise RuntimeError(f"{path} exists but is empty; delete it or set WAYLINE_INTERNAL_TOKEN") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token
