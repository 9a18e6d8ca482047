#!/usr/bin/env bash
# Runs the FUSE tests against a sanitizer build of the native addon.
#
#   scripts/test-native-sanitize.sh [--thread] [TEST_FILE...]
#   npm run test:native-sanitize -- [--thread] [TEST_FILE...]
#
# Default: AddressSanitizer + UndefinedBehaviorSanitizer. --thread: ThreadSanitizer. Without
# TEST_FILEs it runs test/fuse/*.test.ts and test/unit/native/*.test.ts (if any). It is not part
# of `npm test`: those tests need root and /dev/fuse, and an instrumented run is slow.
#
# The addon is built in a temporary directory from native/ and binding.gyp, with the sanitizer
# flags in CXXFLAGS/LDFLAGS (node-gyp's Makefile puts them after binding.gyp's own flags, so -O1
# wins over -O2). The tests load it through LVMFS_NATIVE_ADDON (src/native/addon.ts); the CLI
# (bin/lvmfs.js) runs dist/, so it does so only after `npm run build`.
#
# Node itself is not instrumented. The sanitizer runtime is LD_PRELOADed into every process of
# the run, because it must be loaded before any instrumented code and the addon is dlopen'ed:
#  - ASan: detect_leaks=0. The leak checker would report the allocations node and V8 keep until
#    exit, which are not ours and which we could not attribute.
#  - TSan: node, libuv and V8 are invisible to it, except for the libc calls it intercepts. Those
#    made by node itself (V8's job threads, MessagePort) produce dozens of reports per process, so
#    ignore_noninstrumented_modules turns them off. A race is then reported only when both
#    accesses are in the addon; a happens-before edge made purely in uninstrumented code (atomics
#    inside uv_async_send or napi threadsafe functions) is missed, so such a report can still be
#    a false positive. scripts/tsan.supp is for those, by frames outside native/ only; a report
#    whose stacks are all in native/ counts until shown otherwise.
# Reports go to one file per process (log_path): the daemons under test are child processes, and
# tap does not show every stderr. The script prints them and fails if there is any.
#
# Needs g++ and the runtimes of its version: libasan8, libubsan1, libtsan2 on Debian 12 (gcc 12;
# all three come with g++ through libgcc-12-dev).
set -euo pipefail

mode=address
if [[ "${1:-}" == "--thread" ]]; then
  mode=thread
  shift
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
if (($# > 0)); then
  tests=("$@")
else
  shopt -s nullglob
  tests=(test/fuse/*.test.ts test/unit/native/*.test.ts)
  shopt -u nullglob
fi
if ((${#tests[@]} == 0)); then
  echo "test-native-sanitize: no test files" >&2
  exit 2
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "test-native-sanitize: not root, so the FUSE tests will skip and this proves little" >&2
fi

runtime_of() {
  local path
  path="$(g++ -print-file-name="$1")"
  # g++ echoes the bare name back when it has no such file.
  if [[ "$path" != /* || ! -e "$path" ]]; then
    echo "test-native-sanitize: g++ has no $1 (install its version's libasan/libubsan/libtsan)" >&2
    exit 2
  fi
  readlink -f "$path"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/lvmfs-sanitize.XXXXXX")"
keep=0
trap '((keep)) || rm -rf "$work"' EXIT
logs="$work/logs"
mkdir -p "$logs"
cp -r native binding.gyp "$work/"
# binding.gyp resolves node-addon-api from the build directory.
ln -s "$repo/node_modules" "$work/node_modules"

if [[ "$mode" == thread ]]; then
  flags="-fsanitize=thread -fno-omit-frame-pointer -g -O1"
  preload="$(runtime_of libtsan.so)"
  # ignore_noninstrumented_modules: no reports on malloc/free/pthread calls made by node and V8
  # themselves (their locks still order our accesses). exitcode=0: a report must not change a
  # daemon's exit status, or tests fail on it; the reports are judged below instead.
  tsan_options="suppressions=$repo/scripts/tsan.supp:log_path=$logs/report:second_deadlock_stack=1"
  export TSAN_OPTIONS="$tsan_options:ignore_noninstrumented_modules=1:exitcode=0"
else
  flags="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
  preload="$(runtime_of libasan.so)"
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$logs/report"
  export UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/report"
fi

echo "test-native-sanitize: building the addon with $flags in $work" >&2
# Through npm exec, which hands npm's config (nodedir: where the node headers are) to node-gyp
# as npm_config_* variables, as `npm run build` does.
(cd "$work" && CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="$flags" \
  npm exec --no -- node-gyp rebuild >"$work/build.log" 2>&1) || {
  cat "$work/build.log" >&2
  exit 2
}
addon="$work/build/Release/lvmfs.node"
grep -E "warning:" "$work/build.log" >&2 || true

if ! grep -qs LVMFS_NATIVE_ADDON dist/native/addon.js; then
  echo "test-native-sanitize: dist/ predates LVMFS_NATIVE_ADDON; bin/lvmfs.js loads build/" >&2
fi
export LVMFS_NATIVE_ADDON="$addon"
export LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}"
node -e 'require(process.env.LVMFS_NATIVE_ADDON)' || {
  echo "test-native-sanitize: the sanitizer build does not load" >&2
  exit 2
}

echo "test-native-sanitize: ${mode} sanitizer, ${tests[*]}" >&2
# stdout as is; stderr shown and copied to $logs/stderr.
set +e
tap="$repo/node_modules/.bin/tap"
{ "$tap" --jobs=1 "${tests[@]}" 2>&1 >&3 3>&- | tee "$logs/stderr" >&2 3>&-; } 3>&1
status=${PIPESTATUS[0]}
set -e
unset LD_PRELOAD

pattern='ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer'
# report.PID files, plus anything that reached stderr anyway (already shown above).
mapfile -t reports < <(grep -lE "$pattern" "$logs"/report.* 2>/dev/null || true)
on_stderr="$(grep -cE "$pattern" "$logs/stderr" || true)"
if ((${#reports[@]} > 0 || on_stderr > 0)); then
  for report in "${reports[@]}"; do
    echo "===== ${report#"$logs"/}" >&2
    cat "$report" >&2
  done
  echo "test-native-sanitize: sanitizer reports from ${#reports[@]} process(es)," \
    "$on_stderr line(s) on stderr; kept in $logs" >&2
  keep=1
  exit 1
fi
if ((status != 0)); then
  echo "test-native-sanitize: no sanitizer report, but tap exited $status" >&2
  exit "$status"
fi
echo "test-native-sanitize: no sanitizer report" >&2
