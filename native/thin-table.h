// The block table of a thin LV as the native data path sees it: virtual block -> pool data
// block, filled by TypeScript (which owns the pool's metadata) on demand. An entry is
//   0                          unknown: the request goes to TypeScript (kEntryThinMiss)
//   1                          unmapped: reads return zeros, writes go to TypeScript
//   (dataBlock + 1) << 2 | 2   mapped, may be shared: reads go to the pool, writes to TypeScript
//   (dataBlock + 1) << 2 | 3   mapped and this LV's alone: written in place
// TypeScript changes an entry under the pool's lock before the mapping it describes changes
// in a way a reader could see (docs/thin.md § "The native table").
#pragma once
#include <stdint.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace lvmfs {

constexpr uint64_t kThinUnknown = 0;
constexpr uint64_t kThinUnmapped = 1;
constexpr uint64_t kThinMapped = 2;
constexpr uint64_t kThinWritable = 3;

inline uint64_t ThinState(uint64_t entry) { return entry < 2 ? entry : (entry & 3); }
inline uint64_t ThinDataBlock(uint64_t entry) { return (entry >> 2) - 1; }

class ThinTable {
 public:
  static constexpr uint64_t kPageEntries = 4096;
  explicit ThinTable(uint64_t blocks)
      : blocks_(blocks), pageCount_((blocks + kPageEntries - 1) / kPageEntries),
        pages_(new std::atomic<std::atomic<uint64_t>*>[pageCount_]) {
    for (uint64_t p = 0; p < pageCount_; p++) pages_[p].store(nullptr);
  }
  ~ThinTable() {
    for (uint64_t p = 0; p < pageCount_; p++) delete[] pages_[p].load();
  }
  ThinTable(const ThinTable&) = delete;
  ThinTable& operator=(const ThinTable&) = delete;

  uint64_t blocks() const { return blocks_; }

  uint64_t Get(uint64_t block) const {
    if (block >= blocks_) return kThinUnknown;
    std::atomic<uint64_t>* page = pages_[block / kPageEntries].load(std::memory_order_acquire);
    return page == nullptr ? kThinUnknown : page[block % kPageEntries].load(std::memory_order_acquire);
  }

  void Set(uint64_t block, uint64_t entry) {
    if (block >= blocks_) return;
    PageOf(block)[block % kPageEntries].store(entry, std::memory_order_release);
  }

  // Every writable entry becomes mapped (a snapshot now shares them).
  void ClearWritable() {
    ForEach([](std::atomic<uint64_t>& entry) {
      uint64_t value = entry.load(std::memory_order_acquire);
      while (ThinState(value) == kThinWritable && !entry.compare_exchange_weak(value, value & ~uint64_t(1))) {
      }
    });
  }

  // Every entry becomes unknown (the LV's mapping was replaced).
  void Reset() {
    ForEach([](std::atomic<uint64_t>& entry) { entry.store(kThinUnknown, std::memory_order_release); });
  }

 private:
  std::atomic<uint64_t>* PageOf(uint64_t block) {
    std::atomic<std::atomic<uint64_t>*>& slot = pages_[block / kPageEntries];
    std::atomic<uint64_t>* page = slot.load(std::memory_order_acquire);
    if (page != nullptr) return page;
    std::lock_guard<std::mutex> lock(allocate_);
    page = slot.load(std::memory_order_acquire);
    if (page == nullptr) {
      page = new std::atomic<uint64_t>[kPageEntries];
      for (uint64_t i = 0; i < kPageEntries; i++) page[i].store(kThinUnknown, std::memory_order_relaxed);
      slot.store(page, std::memory_order_release);
    }
    return page;
  }

  template <typename Fn>
  void ForEach(Fn fn) {
    for (uint64_t p = 0; p < pageCount_; p++) {
      std::atomic<uint64_t>* page = pages_[p].load(std::memory_order_acquire);
      if (page == nullptr) continue;
      for (uint64_t i = 0; i < kPageEntries; i++) fn(page[i]);
    }
  }

  uint64_t blocks_;
  uint64_t pageCount_;
  std::unique_ptr<std::atomic<std::atomic<uint64_t>*>[]> pages_;
  std::mutex allocate_;
};

// What makes a volume map a thin LV's: the map's extents and copies are its pool LV's, and
// `table` translates the LV's blocks to the pool's data blocks.
struct ThinSpec {
  uint64_t virtualBytes = 0;
  uint64_t chunkBytes = 0;
  uint64_t dataStartBytes = 0;
  bool nativeWrites = false;  // the pool is unmirrored: no activity log or bitmap to keep
  std::shared_ptr<ThinTable> table;
};

}  // namespace lvmfs
