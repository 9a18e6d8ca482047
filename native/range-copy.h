// Range copier for resync, MWC recovery and scrub repair: copies `length` bytes from one backing
// fd to one or more others on a native worker thread, through one aligned buffer read once per
// chunk and written to every target at once (io_uring where available), or with
// copy_file_range(2) per target (the kernel moves the bytes; falls back to the buffer where it
// refuses the pair). Per chunk it honours the fault injection of faults.cc (source: kFaultRead;
// targets: kFaultWrite, kFaultStall), and it reports the outcome of every target and a source
// error apart: a failed target stops only itself, a failed source stops the copy.
#pragma once
#include <napi.h>
#include <stdint.h>

#include <vector>

namespace lvmfs {

// The buffer is the default: measured as fast as copy_file_range or faster on ext4 (which has
// no reflink and copies through a pipe), with less CPU, reading the source once for every
// target; and copy_file_range may reflink on XFS or btrfs, which would leave the two copies of
// a mirror sharing their blocks (docs/mirror.md, "Copy path").
enum RangeCopyMethod : uint8_t {
  kRangeCopyAuto,           // the buffer (see above)
  kRangeCopyFileRange,      // copy_file_range per target, the buffer where the kernel refuses
  kRangeCopyBuffer,         // pread once per chunk, then every target at once
};

struct RangeCopyTarget {
  int fd = -1;           // as given: the key of injected faults
  int ioFd = -1;         // a dup of fd taken when the copy was asked for: what the I/O uses
  uint64_t offset = 0;
  uint64_t copied = 0;   // bytes of the range written to this target (a prefix)
  int error = 0;         // 0, or -errno: this target failed and copying to it stopped
  bool buffered = false; // copy_file_range refused this pair: the rest goes through the buffer
};

struct RangeCopyJob {
  int sourceFd = -1;
  int sourceIoFd = -1;  // a dup, as RangeCopyTarget::ioFd
  uint64_t sourceOffset = 0;
  uint64_t length = 0;
  uint64_t chunkBytes = 1 << 20;  // unit of fault checks and of one buffer read
  RangeCopyMethod method = kRangeCopyAuto;
  bool writeback = true;  // start writeback of the targets' new bytes at the end (sync_file_range)
  std::vector<RangeCopyTarget> targets;
  int sourceError = 0;       // 0, or -errno of the source read that stopped the copy
  uint64_t fileRangeBytes = 0;  // bytes moved by copy_file_range, summed over targets
  uint64_t bufferBytes = 0;     // bytes moved by pread/pwrite, summed over targets
};

// Runs the job on the calling thread (it blocks: call it on a worker). The I/O goes to the ioFds
// (the fds themselves when no dup was taken); faults are looked up by the fds given.
void RunRangeCopy(RangeCopyJob& job);

// Exports `rangeCopy(sourceFd, sourceOffset, length, targetFds, targetOffsets, options)`, which
// returns a Promise settled from a worker thread (src/native/addon.ts types it).
void InitRangeCopy(Napi::Env env, Napi::Object exports);

}  // namespace lvmfs
