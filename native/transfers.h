// Backing transfers of one request, run as a batch: every copy of every segment of a write (or
// every fd of an fsync) at once through the calling thread's io_uring, so a 2-copy write costs
// the slower copy, not the sum, without handing work to other threads. Falls back to running
// them one after another where io_uring is not available (not built in, or refused by the
// kernel).
#pragma once
#include <stdint.h>

#include <vector>

#include "volume.h"

namespace lvmfs {

enum TransferOp : uint8_t { kTransferRead, kTransferWrite, kTransferSync, kTransferDataSync };

struct Transfer {
  const CopyTarget* copy = nullptr;  // read/write: the copy; sync: unused (fd below)
  int fd = -1;                       // sync only
  TransferOp op = kTransferWrite;
  uint8_t* buffer = nullptr;
  uint64_t length = 0;
  uint64_t offset = 0;  // byte offset on the backing fd
  int result = 1;       // 0 or -errno once run
};

// One whole backing pread/pwrite: O_DIRECT when aligned for the copy, buffered otherwise.
// 0 or -errno; a read that ends before `length` (a truncated PV) is -EIO, never zeros.
int TransferFull(const CopyTarget& copy, bool write, uint8_t* buffer, uint64_t length,
                 uint64_t offset);

// The fd a transfer of `copy` uses: its O_DIRECT one when the transfer is aligned for it.
int FdFor(const CopyTarget& copy, uint64_t offset, uint64_t length, const void* buffer);

// Runs every transfer of the batch and sets its result.
using BatchRunner = void (*)(std::vector<Transfer>& batch);
void RunInOrder(std::vector<Transfer>& batch);
void RunAtOnce(std::vector<Transfer>& batch);

// Whether RunAtOnce uses io_uring on this thread (false: it runs the batch in order).
bool RingAvailable();

}  // namespace lvmfs
