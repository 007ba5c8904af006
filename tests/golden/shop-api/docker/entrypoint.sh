#!/bin/sh
# shop-api: export each mounted secret (/run/secrets/NAME) as the environment variable NAME,
# unless it is already set, then hand PID 1 to the server so it receives SIGTERM directly.
set -eu
if [ -d /run/secrets ]; then
  for file in /run/secrets/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file")
    case "$name" in
      *[!A-Za-z0-9_]* | [0-9]*) continue ;;
    esac
    if [ -z "$(printenv "$name" || true)" ]; then
      value=$(cat "$file")
      export "$name=$value"
    fi
  done
fi
exec "$@"
