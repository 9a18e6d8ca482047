// FUSE over io_uring (kernel 6.14+, module parameter fuse.enable_uring): the wire structs of
// <linux/fuse.h> 7.42 (Debian 12's header is 7.38) and what a queue of the session owns.
//
// One queue per possible CPU (the kernel sends a request to the queue of the CPU it was made
// on, and needs every queue registered before it uses any), each with one thread, pinned there,
// that alone submits to and reaps its ring. A request arrives as the completion of the entry's
// REGISTER or COMMIT_AND_FETCH; a READ or WRITE of a mapped volume goes to the backing fds as
// SQEs on the same ring, and the last completion commits the reply and fetches the next
// request: no thread waits on the disk, so the queue depth is the entry count. docs/fuse.md,
// "FUSE over io_uring", has the protocol and the figures.
#pragma once
#include <stdint.h>

namespace lvmfs {

constexpr uint64_t kInitOverIoUring = 1ULL << 41;  // FUSE_OVER_IO_URING, an INIT flags2 bit
enum RingCommand : uint32_t { kRingRegister = 1, kRingCommitAndFetch = 2 };

struct RingEntryInOut {
  uint64_t flags;
  uint64_t commitId;
  uint32_t payloadBytes;  // valid bytes in the payload buffer, either way
  uint32_t padding;
  uint64_t reserved;
};

// iov[0] of an entry: the request's fuse_in_header on delivery, the reply's fuse_out_header on
// commit; the op header (the request's first argument) in opIn; every other argument, and the
// reply's arguments, in the payload buffer (iov[1], the slot's payload area).
struct alignas(64) RingHeader {
  uint8_t inOut[128];
  uint8_t opIn[128];
  RingEntryInOut entry;
};
static_assert(sizeof(RingHeader) == 320, "ring header: 288 bytes the kernel uses, padded");

// The SQE128 command area of REGISTER and COMMIT_AND_FETCH.
struct RingCommandReq {
  uint64_t flags;
  uint64_t commitId;  // the request's unique, on commit
  uint16_t qid;
  uint8_t padding[6];
};

bool AllocateRingHeaders(uint32_t count, RingHeader** headers);

}  // namespace lvmfs
