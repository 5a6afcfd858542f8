import pytest

# tests/lib, on sys.path from molecule/conftest.py
import gateway_probe as gp
import hardening_probe as hp


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
