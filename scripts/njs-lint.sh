#!/usr/bin/env bash
# The njs linter: ESLint (tests/lint/package.json, pinned with its lock file) over the njs
# modules and the njs test scripts, with the njs 0.8.9 language subset as errors
# (tests/lint/eslint.config.mjs). Installs ESLint into .cache/njs-lint when the lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/njs-lint
command -v node >/dev/null || { echo "njs-lint: node is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 18) ? 0 : 1)' \
  || { echo "njs-lint: ESLint 9 needs node >= 18.18, found $(node -v)" >&2; exit 1; }
sum=$(cat tests/lint/package.json tests/lint/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$dir/.lock.sha256" 2>/dev/null)" != "$sum" ] || [ ! -x "$dir/node_modules/.bin/eslint" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  cp tests/lint/package.json tests/lint/package-lock.json "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$sum" >"$dir/.lock.sha256"
fi
eslint() { node "$dir/node_modules/eslint/bin/eslint.js" -c tests/lint/eslint.config.mjs --max-warnings 0 "$@"; }
# The configuration must bite: the sample of what njs cannot run is refused, rule by rule.
if out=$(eslint tests/lint/bad-njs.js 2>&1); then
  echo "njs-lint: tests/lint/bad-njs.js passed the linter: the configuration is not in force" >&2; exit 1
fi
for rule in 'njs: no destructuring' 'njs: no for...of' 'njs: no default parameters' no-undef; do
  grep -qF -- "$rule" <<<"$out" || { echo "njs-lint: the sample was not refused for: $rule" >&2; echo "$out" >&2; exit 1; }
done
eslint roles/proxy/files/njs tests/njs/unit.js tests/njs/route_unit.js
echo "njs-lint: $(ls roles/proxy/files/njs/*.js | wc -l) njs modules and the njs test scripts are clean (ESLint $(node "$dir/node_modules/eslint/bin/eslint.js" --version))"
