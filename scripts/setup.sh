#!/usr/bin/env bash
# make setup: a virtual environment with pinned dependencies (every extra included), the
# messages built with colcon, and env.sh that every later command sources. Writes only
# inside the checkout.
#
# `setup.sh --lowest` (make test-lowest) builds .venv-lowest instead: every dependency at
# the lower bound of its range (scripts/lowest_constraints.py), the ROS wheels and test
# tools as locked, and env-lowest.sh; it reuses the messages that `make setup` built.
#
# Idempotent: when a venv carries a stamp that matches the requirement files and the
# build inputs are unchanged, it only rewrites its environment file. A run that fails
# removes what it half-built, so a later run never takes a broken venv for a good one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The interpreter a venv is made from; run from a shell that sourced env.sh, python3 is
# .venv's own, which the rebuild deletes first: take the interpreter it was made from.
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
case ${1:-} in
  "") LOWEST=0 VENV=$ROOT/.venv ENV_FILE=$ROOT/env.sh ;;
  --lowest) LOWEST=1 VENV=$ROOT/.venv-lowest ENV_FILE=$ROOT/env-lowest.sh ;;
  *) printf 'usage: %s [--lowest]\n' "$0" >&2; exit 2 ;;
esac
STAMP=$VENV/.vps_ros_setup
BUILD_STAMP=$ROOT/install/.vps_ros_build
export PIP_CACHE_DIR=$ROOT/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'make setup: %s\n' "$*"; }
die() { printf 'make setup: ERROR: %s\n' "$*" >&2; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
req_hash=$(hash_of requirements/*.txt setup.py setup.cfg scripts/lowest_constraints.py)
# Every optional extra (requirements/extra-*.txt): the test suite covers all backends.
EXTRAS=()
for f in requirements/extra-*.txt; do EXTRAS+=(-r "$f"); done
build_hash=$(hash_of package.xml CMakeLists.txt msg/*.msg)

registry_reachable() {
  local index=${PIP_INDEX_URL:-https://pypi.org/simple}
  "$PYTHON" - "$index" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=15)
except Exception as exc:  # any failure means: cannot install from the registry
    print(f"{sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
EOF
}

install_venv() {
  # Called as `install_venv || fail_clean`, where bash ignores set -e: every step returns
  # on failure itself, so a failed install never gets its stamp.
  say "creating .venv and installing pinned dependencies (a few minutes the first time)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || return 1
  local pip=("$VENV/bin/python" -m pip install --quiet --retries 2 --timeout 60)
  "${pip[@]}" -c requirements/lock.txt pip setuptools wheel || return 1
  "${pip[@]}" -c requirements/lock.txt -r requirements/core.txt "${EXTRAS[@]}" \
    -r requirements/ros.txt -r requirements/dev.txt || return 1
  "${pip[@]}" --no-deps --no-build-isolation -e . || return 1
  patch_cmake_exports || return 1
  echo "$req_hash" > "$STAMP"
}

# The lowest leg: direct dependencies at their lower bounds, ROS wheels and test tools
# at their pins (ros.txt, dev.txt), everything else as pip resolves it (recorded in
# .venv-lowest/freeze.txt).
install_lowest_venv() {
  say "creating .venv-lowest with every dependency at its lower bound"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || return 1
  local pip=("$VENV/bin/python" -m pip install --quiet --retries 2 --timeout 60)
  "$PYTHON" scripts/lowest_constraints.py requirements > "$VENV/lowest-constraints.txt" || return 1
  "${pip[@]}" -c requirements/lock.txt pip setuptools wheel || return 1
  "${pip[@]}" -c "$VENV/lowest-constraints.txt" -r requirements/core.txt "${EXTRAS[@]}" \
    -r requirements/ros.txt -r requirements/dev.txt || return 1
  "${pip[@]}" --no-deps --no-build-isolation -e . || return 1
  "$VENV/bin/python" -m pip check || return 1
  "$VENV/bin/python" -m pip freeze --exclude-editable > "$VENV/freeze.txt" || return 1
  echo "$req_hash" > "$STAMP"
}

# The ROS wheels' exported CMake files name include directories of the machine that
# built them (/opt/python/...); point them at this interpreter and this venv's numpy.
patch_cmake_exports() {
  "$VENV/bin/python" - "$VENV/share" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
py_inc, np_inc = sysconfig.get_paths()["include"], numpy.get_include()
for path in pathlib.Path(sys.argv[1]).rglob("*.cmake"):
    text = path.read_text()
    new = re.sub(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include",
                 np_inc, text)
    new = re.sub(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+", py_inc, new)
    if new != text:
        path.write_text(new)
EOF
}

build_messages() {
  say "building msg/ with colcon into install/"
  rm -rf "$ROOT/build" "$ROOT/install"
  # CMake refuses exported include paths inside the source tree, and .venv (with
  # numpy's headers) is inside the checkout: build from a copy of the package files.
  local src=$ROOT/build/src/vps_ros
  mkdir -p "$src"
  cp -r package.xml CMakeLists.txt msg vps_ros scripts launch config models resource "$src/"
  (
    export PATH=$VENV/bin:$PATH AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
    export COLCON_HOME=$ROOT/.cache/colcon COLCON_LOG_PATH=$ROOT/log
    colcon build --base-paths "$src" --build-base "$ROOT/build" --install-base "$ROOT/install" \
      --event-handlers console_direct- \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      -DVPS_ROS_INSTALL_PYTHON=OFF >/dev/null
  ) || return 1
  echo "$build_hash" > "$BUILD_STAMP"
}

write_env() {
  local site
  site=$(echo "$ROOT"/install/vps_ros/lib/python3*/site-packages)
  cat > "$ENV_FILE" <<EOF
# Written by \`$1\`; source it before running vps_ros commands in this checkout.
. "$VENV/bin/activate"
export AMENT_PREFIX_PATH="$ROOT/install/vps_ros:$VENV"
export LD_LIBRARY_PATH="$ROOT/install/vps_ros/lib:$VENV/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
# The checkout first: vps_ros comes from here, and vps_ros/__init__.py extends its
# path to the generated vps_ros.msg under install/.
export PYTHONPATH="$ROOT:$site\${PYTHONPATH:+:\$PYTHONPATH}"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR="$ROOT/.cache/ros_log"
export MPLCONFIGDIR="$ROOT/.cache/matplotlib"
export PIP_CACHE_DIR="$ROOT/.cache/pip"
EOF
}

fail_clean() {
  rm -rf "$VENV" "$ENV_FILE"
  (( LOWEST )) || rm -rf "$ROOT/build" "$ROOT/install"
  die "$1"
}

if (( LOWEST )); then
  [[ -f $BUILD_STAMP && $(cat "$BUILD_STAMP") == "$build_hash" ]] || \
    die "the messages are not built; run \`make setup\` first (make test-lowest does)."
  if [[ -f $STAMP && $(cat "$STAMP") == "$req_hash" ]]; then
    say ".venv-lowest is up to date"
  else
    registry_reachable || die "cannot reach the package registry (PyPI) from this machine; \
it is needed once to install the lower bounds. Nothing was changed."
    install_lowest_venv || fail_clean "installing the lower bounds failed (see pip's message \
above); the half-built .venv-lowest was removed."
  fi
  write_env "make test-lowest"
  say "ready: source env-lowest.sh"
  exit 0
fi

if [[ -f $STAMP && $(cat "$STAMP") == "$req_hash" ]]; then
  say ".venv is up to date"
else
  registry_reachable || die "cannot reach the package registry (PyPI) from this machine; \
make setup needs it once to install the pinned dependencies. Nothing was changed."
  install_venv || fail_clean "installing the dependencies failed (see pip's message above); \
the half-built .venv was removed."
fi

if [[ -f $BUILD_STAMP && $(cat "$BUILD_STAMP") == "$build_hash" ]]; then
  say "messages are up to date"
else
  if ! build_messages; then
    rm -rf "$ROOT/build" "$ROOT/install" "$ROOT/env.sh"
    die "colcon could not build msg/ (see log/latest_build/vps_ros/stdout_stderr.log)."
  fi
fi
write_env "make setup"
say "ready: source env.sh"
