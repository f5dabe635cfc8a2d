#!/bin/sh
# ctest's install_pkgconfig: install the build in BUILD_DIR into a scratch
# prefix with `cmake --install`, then build CONSUMER_C against it with
# pkg-config alone and run it (it records a trace, reads it back, writes the
# database). Also checks the installed yprof-analyze and yprof.pc versions.
#   check_install.sh CMAKE BUILD_DIR CONSUMER_C CC VERSION
set -eu
cmake=$1 build=$2 src=$3 cc=$4 version=$5
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
"$cmake" --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name yprof.pc -path '*/pkgconfig/*' -exec dirname {} \;)
export PKG_CONFIG_PATH="$libdir"
test "$(pkg-config --modversion yprof)" = "$version"
test "$("$prefix/bin/yprof-analyze" --version)" = "yprof-analyze $version"
# shellcheck disable=SC2046
"$cc" -std=c11 -o "$prefix/consumer" "$src" $(pkg-config --cflags --libs yprof)
"$prefix/consumer" "$prefix/t.yp" "$prefix/t.db"
"$prefix/bin/yprof-analyze" "$prefix/t.yp" -o "$prefix/t2.db" | grep -q ' inner'
echo "install: headers, libraries, yprof.pc and yprof-analyze $version work from $prefix"
