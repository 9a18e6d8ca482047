#include "volume.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace lvmfs {

namespace {

// What O_DIRECT needs on this fd: the logical sector of a block device, the file system's
// direct-I/O alignment of a file (4 KiB on 4Kn disks, where 512 would fail with EINVAL).
uint32_t DirectAlignment(int fd) {
  struct stat info;
  if (fstat(fd, &info) == 0 && S_ISBLK(info.st_mode)) {
    int sector = 0;
    if (ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0) return static_cast<uint32_t>(sector);
    return 512;
  }
#ifdef STATX_DIOALIGN
  struct statx extended;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &extended) == 0 &&
      (extended.stx_mask & STATX_DIOALIGN) && extended.stx_dio_offset_align > 0) {
    return std::max(extended.stx_dio_offset_align, extended.stx_dio_mem_align);
  }
#endif
  return 512;
}

}  // namespace

void DirtyChunks::Mark(uint64_t offsetBytes, uint64_t lengthBytes) {
  if (lengthBytes == 0) return;
  uint64_t last = (offsetBytes + lengthBytes - 1) / chunkBytes;
  for (uint64_t chunk = offsetBytes / chunkBytes; chunk <= last; chunk++) {
    size_t word = chunk / 64;
    if (word >= words.size()) break;
    uint64_t bit = uint64_t(1) << (chunk % 64);
    if ((words[word].load(std::memory_order_relaxed) & bit) == 0) words[word].fetch_or(bit, std::memory_order_seq_cst);
  }
  any.store(true, std::memory_order_seq_cst);
}

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
  std::vector<std::pair<int, uint32_t>> alignments;  // direct fd -> O_DIRECT alignment
  for (auto& extent : map.extents) {
    for (int i = 0; i < extent.count; i++) {
      CopyTarget& copy = extent.copies[i];
      if (copy.fd < 0) continue;  // a stale copy on an unreachable PV: never touched
      copy.remote = LookupRemoteFd(copy.fd);
      // A remote PV's token is no file: never O_DIRECT, so it has no buffered twin either.
      int flags = copy.remote ? 0 : fcntl(copy.fd, F_GETFL);
      copy.direct = flags >= 0 && (flags & O_DIRECT) != 0;
      copy.bufferedFd = copy.fd;
      if (copy.direct) {
        auto known = std::find_if(alignments.begin(), alignments.end(),
                                  [&](const std::pair<int, uint32_t>& p) { return p.first == copy.fd; });
        if (known == alignments.end()) {
          alignments.emplace_back(copy.fd, DirectAlignment(copy.fd));
          known = alignments.end() - 1;
        }
        copy.alignBytes = known->second;
      }
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
