#include "faults.h"

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace lvmfs {

namespace {

struct FaultRange {
  uint64_t start;
  uint64_t end;
  uint32_t mask;
};

std::shared_mutex gMutex;
std::unordered_map<int, std::vector<FaultRange>> gFaults;
std::atomic<bool> gAnyFault{false};

uint32_t MaskFor(int fd, uint64_t start, uint64_t length) {
  if (!gAnyFault.load(std::memory_order_relaxed)) return 0;
  std::shared_lock<std::shared_mutex> lock(gMutex);
  auto found = gFaults.find(fd);
  if (found == gFaults.end()) return 0;
  uint32_t mask = 0;
  uint64_t end = length == 0 ? start + 1 : (start + length < start ? UINT64_MAX : start + length);
  for (const FaultRange& range : found->second) {
    if (start < range.end && range.start < end) mask |= range.mask;
  }
  return mask;
}

}  // namespace

void SetFault(int fd, uint32_t mask, uint64_t startBytes, uint64_t lengthBytes) {
  std::unique_lock<std::shared_mutex> lock(gMutex);
  if (mask == 0) {
    gFaults.erase(fd);
  } else {
    uint64_t end = startBytes + lengthBytes < startBytes ? UINT64_MAX : startBytes + lengthBytes;
    gFaults[fd].push_back(FaultRange{startBytes, end, mask});
  }
  gAnyFault.store(!gFaults.empty());
}

int InjectedFault(int fd, bool write, uint64_t offsetBytes, uint64_t lengthBytes) {
  uint32_t mask = MaskFor(fd, offsetBytes, lengthBytes);
  if (mask == 0) return 0;
  if (write && (mask & kFaultStall)) usleep(300 * 1000);
  return (mask & (write ? kFaultWrite : kFaultRead)) ? -EIO : 0;
}

bool HasFault(int fd, uint64_t offsetBytes, uint64_t lengthBytes) {
  return MaskFor(fd, offsetBytes, lengthBytes) != 0;
}

int InjectedSyncFault(int fd) {
  return (MaskFor(fd, 0, UINT64_MAX) & kFaultSync) ? -EIO : 0;
}

}  // namespace lvmfs
