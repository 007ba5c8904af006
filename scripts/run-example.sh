#!/usr/bin/env bash
# kit's main job on the bundled example, on a fresh machine: set-up (idempotent), then kit run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/kit" run "$root/examples/shop-api" "$@"
