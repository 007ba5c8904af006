#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up (idempotent), then pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
export TESTCONTAINERS_RYUK_DISABLED=true
export KIT_FRESH=1          # kit's own CI always re-proves everything (tests of the cache unset it)
exec "$root/.venv/bin/python" -m pytest "$@"
