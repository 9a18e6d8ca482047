// Fault injection for drills and tests (lvmfs fault): per backing fd and byte range. Bits of a
// fault mask: kFaultRead fails reads with EIO, kFaultWrite fails writes and fallocates,
// kFaultStall delays each write by 300 ms (a stalled disk, so tests can hold a write in
// flight), kFaultSync fails fsync/fdatasync. One relaxed load per call when no fault is set.
#pragma once
#include <stdint.h>

namespace lvmfs {

enum FaultBit : uint32_t { kFaultRead = 1, kFaultWrite = 2, kFaultStall = 4, kFaultSync = 8 };

// Adds a fault on [startBytes, startBytes + lengthBytes) of fd; mask 0 clears every fault of fd.
void SetFault(int fd, uint32_t mask, uint64_t startBytes, uint64_t lengthBytes);
// 0, or -EIO when an injected fault hits this transfer (after any injected stall).
int InjectedFault(int fd, bool write, uint64_t offsetBytes, uint64_t lengthBytes);
int InjectedSyncFault(int fd);
// Whether any fault covers the range (no stall taken): paths that cannot inject one leave such
// a transfer to one that can.
bool HasFault(int fd, uint64_t offsetBytes, uint64_t lengthBytes);

}  // namespace lvmfs
