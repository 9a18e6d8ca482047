// The arena shared with TypeScript: entries (native -> JS events), per-slot metadata and the
// slots themselves. Every offset TypeScript reads is exported by Session's `layout` accessor
// from the structs below (offsetof), so the two sides cannot drift apart.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace lvmfs {

constexpr uint32_t kEntryBytes = 32;
constexpr uint32_t kMaxEntries = 4096;
constexpr uint32_t kSlotMetaBytes = 64;
constexpr uint32_t kPayloadOffset = 4096;
constexpr uint32_t kRequestOffset = kPayloadOffset - 80;  // WRITE data lands page-aligned
// The kernel refuses a read(2) buffer below max(8192, 80 + max_write).
constexpr uint32_t kMinPayloadBytes = 8192;

enum EntryKind : uint32_t {
  kEntryRequest = 1,     // slot owned by JS: reply() or release()
  kEntryGate = 2,        // slot owned by JS: open the gate, then resume() (or reply())
  kEntryWriteError = 3,  // slot owned by JS: finishWrite(errno) after policy reacted
  kEntryReadError = 4,   // notification only: a copy failed a read, another served it (or none)
  kEntryClosed = 5,      // all readers stopped (unmounted or aborted)
  kEntryReplyFailed = 6, // notification only: writev of a reply failed with `error`
  kEntryThinMiss = 7,    // slot owned by JS: publish thin block `extent` (copy: kThinMiss*), then resume()
};

// `copy` of a kEntryThinMiss entry: flag bits, and from bit 8 on the number of blocks from
// `extent` to the end of the write (TypeScript provisions them all at once).
constexpr uint32_t kThinMissWrite = 1;          // a write needs the blocks writable
constexpr uint32_t kThinMissWholeBlock = 2;     // and covers all of the first: nothing to copy or zero
constexpr uint32_t kThinMissLastPartial = 4;    // the last block of several is covered only in part
constexpr uint32_t kThinMissCountShift = 8;

struct Entry {
  uint32_t kind;
  uint32_t slot;
  uint64_t nodeid;
  uint32_t extent;
  uint32_t copy;
  int32_t error;
  uint32_t generation;  // the slot's owner generation when the entry was pushed
};
static_assert(sizeof(Entry) == kEntryBytes, "entry layout");

// One failed (extent, copy) of a WRITE or FALLOCATE, or one failed backing fd of an FSYNC
// (extent = kFailureAllExtents, copy = the fd). Records live at the start of the slot, in the
// bytes before the request (kRequestOffset of them), which nothing else uses.
constexpr uint32_t kFailureAllExtents = 0xffffffffu;
constexpr uint32_t kFailureNoCopy = 0xffffffffu;  // an extent lost with no copy attempted
enum FailureFlag : uint32_t { kFailureExtentLost = 1 };
struct FailureRecord {
  uint32_t extent;
  uint32_t copy;
  int32_t error;  // negative errno
  uint32_t flags;
};
static_assert(sizeof(FailureRecord) == 16, "failure record layout");
constexpr uint32_t kMaxFailureRecords = kRequestOffset / sizeof(FailureRecord);

enum SlotFlag : uint32_t {
  kSlotPartial = 1,      // stopped early with failures to report: finishWrite(0) continues it
  kSlotUnsupported = 2,  // FALLOCATE: some extent refused the mode on every copy
};

struct SlotMeta {
  uint32_t requestBytes;
  uint32_t reader;
  uint32_t generation;
  uint32_t failureCount;
  uint32_t lostExtents;
  uint32_t writtenBytes;
  uint64_t nodeid;
  // Bytes of a multi-region FALLOCATE already done: it resumes there after a gate opens.
  uint64_t progressBytes;
  uint32_t flags;
  uint32_t pad[5];
};
static_assert(sizeof(SlotMeta) == kSlotMetaBytes, "slot meta layout");

}  // namespace lvmfs
