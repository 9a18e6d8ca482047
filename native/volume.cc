#include "volume.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>

namespace lvmfs {

VolumeMap::~VolumeMap() {
  for (int fd : ownedFds) close(fd);
}

int64_t FirstClosedRegion(const VolumeMap& map, uint64_t offsetBytes, uint64_t lengthBytes) {
  if (map.gateBytes == 0 || lengthBytes == 0) return -1;
  uint64_t first = offsetBytes / map.gateBytes;
  uint64_t last = (offsetBytes + lengthBytes - 1) / map.gateBytes;
  for (uint64_t region = first; region <= last; region++) {
    size_t word = region / 64;
    if (word >= map.gateWordCount) return static_cast<int64_t>(region);
    uint64_t bits = map.gateWords[word].load(std::memory_order_seq_cst);
    if ((bits & (uint64_t(1) << (region % 64))) == 0) return static_cast<int64_t>(region);
  }
  return -1;
}

void SetGate(VolumeMap& map, uint64_t region, bool open) {
  size_t word = region / 64;
  if (word >= map.gateWordCount) return;
  uint64_t bit = uint64_t(1) << (region % 64);
  if (open) map.gateWords[word].fetch_or(bit, std::memory_order_seq_cst);
  else map.gateWords[word].fetch_and(~bit, std::memory_order_seq_cst);
}

void FinishMap(VolumeMap& map) {
  std::vector<std::pair<int, int>> buffered;  // direct fd -> buffered fd
  for (auto& extent : map.extents) {
    for (int i = 0; i < extent.count; i++) {
      CopyTarget& copy = extent.copies[i];
      if (copy.fd < 0) continue;  // a stale copy on an unreachable PV: never touched
      int flags = fcntl(copy.fd, F_GETFL);
      copy.direct = flags >= 0 && (flags & O_DIRECT) != 0;
      copy.bufferedFd = copy.fd;
      if (std::find(map.distinctFds.begin(), map.distinctFds.end(), copy.fd) ==
          map.distinctFds.end()) {
        map.distinctFds.push_back(copy.fd);
      }
      if (!copy.direct) continue;
      auto found = std::find_if(buffered.begin(), buffered.end(),
                                [&](const std::pair<int, int>& p) { return p.first == copy.fd; });
      if (found != buffered.end()) {
        copy.bufferedFd = found->second;
        continue;
      }
      char path[64];
      snprintf(path, sizeof(path), "/proc/self/fd/%d", copy.fd);
      int reopened = open(path, (flags & ~O_DIRECT & O_ACCMODE) | O_CLOEXEC);
      if (reopened >= 0) {
        map.ownedFds.push_back(reopened);
        buffered.emplace_back(copy.fd, reopened);
        copy.bufferedFd = reopened;
      }
    }
  }
  if (map.gateBytes > 0) {
    uint64_t regions = (map.sizeBytes + map.gateBytes - 1) / map.gateBytes;
    map.gateWordCount = (regions + 63) / 64;
    map.gateWords.reset(new std::atomic<uint64_t>[map.gateWordCount]);
    for (size_t i = 0; i < map.gateWordCount; i++) map.gateWords[i] = 0;
  }
}

}  // namespace lvmfs
