"""The stock text of the file the supergateway bridge patch edits, from the patched one.

Usage: python3 bench/unpatch.py <supergateway version> < patched-file > stock-file
       python3 bench/unpatch.py <supergateway version> --path
Prints the file's path inside the install directory on the first line, then the stock content
(--path: the path only).
Uses the role's own patch data (roles/supergateway/vars/bridge-<version>.yml) and the
source_patch module's code, which checks both SHA-256 digests: a file that is not the patched
one fails here (bench/scale.sh's stock row).
"""
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
from _source_patch import plan  # noqa: E402  (the module's own code, not a copy)


def main():
    version = sys.argv[1]
    vars_file = ROOT / "roles" / "supergateway" / "vars" / ("bridge-%s.yml" % version)
    if not vars_file.exists():
        sys.exit("unpatch.py: no bridge patch for supergateway %s (%s)" % (version, vars_file))
    files = yaml.safe_load(vars_file.read_text(encoding="utf-8"))["__supergateway_bridge_patch"]["files"]
    if len(files) != 1:
        sys.exit("unpatch.py: the stock row handles a patch of one file; %s has %d" % (vars_file, len(files)))
    f = files[0]
    if sys.argv[2:] == ["--path"]:
        print(f["path"])
        return
    data = sys.stdin.buffer.read()
    stock = plan(data, f["path"], f["stock_sha256"], f["patched_sha256"], f["edits"], "absent")
    if stock is None:
        sys.exit("unpatch.py: %s is already the stock file: the bridge patch is not applied" % f["path"])
    sys.stdout.buffer.write(f["path"].encode() + b"\n" + stock)


if __name__ == "__main__":
    main()
