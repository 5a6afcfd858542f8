"""The built collection (what Galaxy users install) holds the collection and no development content."""
from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV = (".venv/", ".cache/", ".ci/", ".git/", ".pytest_cache/", ".molecule/", "molecule/", "bench/", "scripts/",
       "tests/", "__pycache__/", ".yamllint", ".ansible-lint", "requirements-dev.txt")


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("build")
    subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), str(REPO)],
                   check=True, capture_output=True)
    (tarball,) = out.glob("mcpsec-gateway-*.tar.gz")
    with tarfile.open(tarball) as tar:
        return tar.getnames()


@pytest.mark.parametrize("prefix", DEV)
def test_no_development_content(members, prefix):
    hits = [m for m in members if m.startswith(prefix) or ("/" + prefix) in ("/" + m)]
    assert not hits, hits[:5]


@pytest.mark.parametrize("path", ["LICENSE", "README.md", "MANIFEST.json", "meta/runtime.yml",
                                  "roles/proxy/files/njs/mcpsec.js", "plugins/filter/expand_policy.py",
                                  "playbooks/site.yml", "changelogs/changelog.yaml",
                                  "monitoring/prometheus/mcpsec.rules.yml", "monitoring/grafana/mcpsec-gateway.json"])
def test_the_collection_itself_is_there(members, path):
    assert path in members
