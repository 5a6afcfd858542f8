import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "lib"))

import gateway_probe as gp  # noqa: E402  pylint: disable=wrong-import-position
import hardening_probe as hp  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def gw(host):
    """The gateway as the controller reaches it (the published 443, its CA)."""
    name = host.backend.get_hostname()
    base = "https://" + hp.published(name, 443).replace("127.0.0.1", "localhost")
    return {"name": name, "base": base, "mcp": base + "/mcp", "ca": gp.ca_file_from(host)}


@pytest.fixture(scope="module")
def creds(host):
    """The demo users' basic credentials, read from the host."""
    return {u: (u, hp.demo_password(host, u)) for u in ("alice", "bob")}
