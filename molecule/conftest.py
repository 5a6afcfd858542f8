"""Every scenario's testinfra tests (molecule/*/tests) import their probes and case libraries
from tests/lib. pytest loads this file before a scenario's own conftest.py because the
verifier's confcutdir is molecule/ (.config/molecule/config.yml)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lib"))
