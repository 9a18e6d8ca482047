#!/usr/bin/env bash
# The FUSE-over-io_uring probe against /dev/fuse and the raw file, in one run (root):
#   bash scripts/probe-fuse-uring.sh [RUNTIME_S] [ROUNDS]
# Builds scripts/probe-fuse-uring.c, serves a 1 GiB file with each transport and runs fio
# (libaio, direct, 4 KiB random read and write, qd32) on it and on the backing file itself.
# enable_uring is the admin's setting: it is turned on for the uring runs and put back after.
set -euo pipefail
runtime=${1:-5} rounds=${2:-2}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/probe-fuse-uring.XXXXXX)
param=/sys/module/fuse/parameters/enable_uring
saved=$(cat "$param")
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  umount -l "$work/mnt" 2>/dev/null || true
  echo "$saved" > "$param"
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -Wall -o "$work/probe" "$here/probe-fuse-uring.c" -l:liburing.a -lpthread
dd if=/dev/zero of="$work/backing.img" bs=1M count=1024 conv=fsync status=none
mkdir "$work/mnt"
measure() {  # TARGET RW -> IOPS
  fio --name=p --filename="$1" --direct=1 --rw="$2" --bs=4k --iodepth=32 --ioengine=libaio \
    --runtime="$runtime" --time_based --size=1G --output-format=json 2>/dev/null |
    python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]; print(int(j['read' if '$2'=='randread' else 'write']['iops']))"
}
serve() {  # MODE RW -> IOPS through the mount
  [ "$1" = uring ] && echo Y > "$param" || echo "$saved" > "$param"
  "$work/probe" "$1" "$work/mnt" "$work/backing.img" 2>"$work/$1.err" &
  server=$!
  for _ in $(seq 50); do [ -e "$work/mnt/f" ] && break; sleep 0.1; done
  measure "$work/mnt/f" "$2"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  umount -l "$work/mnt" 2>/dev/null || true
}
printf '| round | workload | raw file | /dev/fuse | io_uring | uring / dev | uring / raw |\n|---|---|---|---|---|---|---|\n'
for round in $(seq "$rounds"); do
  for rw in randread randwrite; do
    raw=$(measure "$work/backing.img" "$rw"); dev=$(serve dev "$rw"); uring=$(serve uring "$rw")
    python3 -c "print(f'| $round | $rw 4k qd32 | $raw | $dev | $uring | {$uring/$dev:.2f} | {$uring/$raw:.2f} |')"
  done
done
