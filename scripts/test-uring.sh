#!/usr/bin/env bash
# The transport matrix's second half: runs tap on the given test files with LVMFS_TRANSPORT=uring
# (every lvmfs mount and in-process FUSE mount of the suite then serves over FUSE-over-io_uring).
# fuse.enable_uring is the admin's setting: turned on for the run and put back after, even when
# a test fails. Skips, saying why, where the kernel has no FUSE over io_uring or we are not root.
set -euo pipefail
param=/sys/module/fuse/parameters/enable_uring
if [ ! -w "$param" ]; then
  echo "test-uring: skipped: $param is missing or not writable (needs Linux 6.14+ with CONFIG_FUSE_IO_URING, as root)"
  exit 0
fi
saved=$(cat "$param")
trap 'echo "$saved" > "$param"' EXIT
echo Y > "$param"
LVMFS_TRANSPORT=uring npx tap "$@"
