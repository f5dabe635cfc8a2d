#!/usr/bin/env bash
# The overhead benchmark, one command:  bench/run.sh [PYTHON] [bench.py options]
# (bench/run.sh PYTHON --gap [gap.py options]: the one-process comparison with
# the floors, bench/gap.py, instead of the table; bench/run.sh PYTHON
# --pollution: the pollution figure against the measured slow-down,
# bench/pollution.py)
# Creates bench/.venv-<version>, installs yprof from this tree and the peers
# (yappi, viztracer, pyinstrument; pyperformance for its benchmark programs)
# from PyPI, builds the empty-hook floor
# module, and prints the table that docs/performance.md holds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
[ $# -gt 0 ] && shift
VER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV=bench/.venv-$VER
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check yappi viztracer pyinstrument pyperformance
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps .
INC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
EXT=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
gcc -O2 -shared -fPIC -I"$INC" bench/emptyhook.c -o "$SITE/emptyhook$EXT"
SCRIPT=bench/bench.py
case "${1:-}" in
--gap) SCRIPT=bench/gap.py; shift ;;
--pollution) SCRIPT=bench/pollution.py; shift ;;
esac
exec "$VENV/bin/python" "$SCRIPT" "$@"
