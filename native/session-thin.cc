// Thin LVs on the native data path (docs/thin.md § "The native table"). A thin LV's map is its
// pool LV's map plus a block table: a READ or WRITE whose blocks the table knows (mapped, and
// for a write this LV's alone) goes straight to the pool's copies; a block the table does not
// know, or must not write in place, goes to TypeScript as a thin miss, which allocates or
// copies the block under the pool's lock, publishes the entry and resumes the request. Any
// failed backing I/O hands the whole request to TypeScript, which serves it through the mirror
// engine (stale marking included).
#include <errno.h>
#include <string.h>

#include <algorithm>

#include "session.h"

namespace lvmfs {

bool Session::TryThinOp(uint32_t slotId, const std::shared_ptr<Volume>& volume, uint32_t opcode) {
  // FSYNC is a pool commit and FALLOCATE a discard: TypeScript's.
  if (opcode != FUSE_READ && opcode != FUSE_WRITE) return false;
  // Reads count in flight too: a commit drains them before the blocks they may be reading can
  // be reused.
  int generation = volume->generation.load(std::memory_order_seq_cst);
  volume->inflight[generation].fetch_add(1, std::memory_order_seq_cst);
  std::shared_ptr<VolumeMap> map = volume->Current();
  if (!map || !map->thin) {
    volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
    return false;
  }
  if (opcode == FUSE_READ) ExecuteThinRead(slotId, volume, *map);
  else ExecuteThinWrite(slotId, *map);
  volume->inflight[generation].fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

void Session::HandToThinMiss(uint32_t slotId, uint64_t block, uint32_t flags) {
  Slot& slot = slots_[slotId];
  if (IsDaemonThread(HeaderOf(slot)->pid)) {
    counters_.selfRequests++;
    return ReplyNative(slotId, -EDEADLK, nullptr, 0);
  }
  counters_.gated++;
  HandToJs(slotId, kEntryThinMiss, static_cast<uint32_t>(block), flags);
}

namespace {

struct Piece {
  uint64_t block, within, at, length;
};

// Consecutive pieces of one request whose pool bytes follow each other: one transfer.
struct Run {
  uint64_t poolAt = 0, at = 0, length = 0;
  bool Extends(uint64_t pieceAt, const Piece& piece) const {
    return length > 0 && poolAt + length == pieceAt && at + length == piece.at;
  }
};

template <typename Fn>
bool ForEachPiece(uint64_t offset, uint64_t length, uint64_t chunk, Fn fn) {
  for (uint64_t at = 0; at < length;) {
    uint64_t position = offset + at;
    uint64_t within = position % chunk;
    uint64_t piece = std::min(chunk - within, length - at);
    if (!fn(Piece{position / chunk, within, at, piece})) return false;
    at += piece;
  }
  return true;
}

}  // namespace

void Session::ExecuteThinRead(uint32_t slotId, const std::shared_ptr<Volume>& volume, const VolumeMap& map) {
  Slot& slot = slots_[slotId];
  const ThinSpec& thin = *map.thin;
  auto* in = BodyOf<fuse_read_in>(slot);
  uint64_t offset = in->offset;
  uint64_t length = std::min<uint64_t>(in->size, maxWrite_);
  length = offset >= thin.virtualBytes ? 0 : std::min(length, thin.virtualBytes - offset);
  uint8_t* buffer = slot.base + kPayloadOffset;
  uint32_t start = volume->roundRobin.fetch_add(1, std::memory_order_relaxed);
  uint64_t missing = UINT64_MAX;
  bool failed = false;
  // Pieces whose data blocks follow each other on the pool are read as one.
  Run run;
  auto flush = [&]() {
    if (run.length == 0) return;
    int error = ReadVolume(map, run.poolAt, run.length, buffer + run.at, start,
                           [&](uint32_t, uint32_t, int) { failed = true; });
    if (error != 0) failed = true;
    run.length = 0;
  };
  ForEachPiece(offset, length, thin.chunkBytes, [&](const Piece& piece) {
    uint64_t entry = thin.table->Get(piece.block);
    if (entry == kThinUnknown) {
      missing = piece.block;
      return false;
    }
    if (entry == kThinUnmapped) {
      flush();
      memset(buffer + piece.at, 0, piece.length);
      return !failed;
    }
    uint64_t at = thin.dataStartBytes + ThinDataBlock(entry) * thin.chunkBytes + piece.within;
    if (!run.Extends(at, piece)) {
      flush();
      run = Run{at, piece.at, 0};
    }
    run.length += piece.length;
    return !failed;
  });
  if (missing == UINT64_MAX) flush();
  if (missing != UINT64_MAX) return HandToThinMiss(slotId, missing, 0);
  if (failed) {
    counters_.copyErrors++;
    counters_.jsRequests++;
    return HandToJs(slotId, kEntryRequest);
  }
  counters_.readOps++;
  counters_.readBytes += length;
  ReplyNative(slotId, 0, buffer, length);
}

void Session::ExecuteThinWrite(uint32_t slotId, const VolumeMap& map) {
  Slot& slot = slots_[slotId];
  const ThinSpec& thin = *map.thin;
  auto* in = BodyOf<fuse_write_in>(slot);
  if (map.readOnly) return ReplyNative(slotId, -EROFS, nullptr, 0);
  uint64_t offset = in->offset;
  uint64_t length = in->size;
  if (offset >= thin.virtualBytes && length > 0) return ReplyNative(slotId, -ENOSPC, nullptr, 0);
  length = std::min(length, thin.virtualBytes - offset);
  if (!thin.nativeWrites) {
    counters_.jsRequests++;
    return HandToJs(slotId, kEntryRequest);
  }
  // Every block must be writable in place before any byte is written. A miss names the first
  // block that is not and how many follow it in the write, so one miss provisions them all.
  uint64_t missing = UINT64_MAX;
  uint32_t flags = kThinMissWrite;
  uint64_t lastBlock = (offset + length - 1) / thin.chunkBytes;
  ForEachPiece(offset, length, thin.chunkBytes, [&](const Piece& piece) {
    if (ThinState(thin.table->Get(piece.block)) == kThinWritable) return true;
    missing = piece.block;
    if (piece.length == thin.chunkBytes) flags |= kThinMissWholeBlock;
    if (lastBlock > piece.block && (offset + length) % thin.chunkBytes != 0) flags |= kThinMissLastPartial;
    flags |= static_cast<uint32_t>(lastBlock - piece.block + 1) << kThinMissCountShift;
    return false;
  });
  if (missing != UINT64_MAX) return HandToThinMiss(slotId, missing, flags);
  const uint8_t* data = slot.base + kPayloadOffset;
  FailureRecord records[kMaxFailureRecords];
  bool failed = false;
  Run run;
  auto flush = [&]() {
    if (run.length == 0) return;
    FailureSink sink{records, kMaxFailureRecords};
    uint64_t done = WriteVolume(map, run.poolAt, run.length, data + run.at, 0, RunAtOnce, sink);
    failed = sink.count > 0 || done < run.length;
    run.length = 0;
  };
  bool written = ForEachPiece(offset, length, thin.chunkBytes, [&](const Piece& piece) {
    uint64_t entry = thin.table->Get(piece.block);
    // Shared since the check (a snapshot): the miss path copies it first.
    if (ThinState(entry) != kThinWritable) return false;
    uint64_t at = thin.dataStartBytes + ThinDataBlock(entry) * thin.chunkBytes + piece.within;
    if (!run.Extends(at, piece)) {
      flush();
      run = Run{at, piece.at, 0};
    }
    run.length += piece.length;
    return !failed;
  });
  if (written) flush();
  written = written && !failed;
  if (!written) {
    // A failed copy (TypeScript marks it stale) or a block shared meanwhile: TypeScript serves
    // the whole write, which rewrites what was written here.
    if (failed) counters_.copyErrors++;
    counters_.jsRequests++;
    return HandToJs(slotId, kEntryRequest);
  }
  MetaOf(slot)->writtenBytes = static_cast<uint32_t>(length);
  counters_.writeOps++;
  counters_.writeBytes += length;
  fuse_write_out out = {};
  out.size = static_cast<uint32_t>(length);
  ReplyNative(slotId, 0, &out, sizeof(out));
}

std::shared_ptr<ThinTable> Session::ThinTableOf(const Napi::CallbackInfo& info) {
  uint64_t nodeid = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::shared_ptr<Volume> volume = FindVolume(nodeid);
  if (!volume) return nullptr;
  std::lock_guard<std::mutex> lock(volume->mutex);
  return volume->thinTable;
}

Napi::Value Session::ThinSet(const Napi::CallbackInfo& info) {
  std::shared_ptr<ThinTable> table = ThinTableOf(info);
  if (!table) return Napi::Boolean::New(info.Env(), false);
  table->Set(static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
             static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()));
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Session::ThinClearWritable(const Napi::CallbackInfo& info) {
  std::shared_ptr<ThinTable> table = ThinTableOf(info);
  if (table) table->ClearWritable();
  return Napi::Boolean::New(info.Env(), table != nullptr);
}

Napi::Value Session::ThinReset(const Napi::CallbackInfo& info) {
  std::shared_ptr<ThinTable> table = ThinTableOf(info);
  if (table) table->Reset();
  return Napi::Boolean::New(info.Env(), table != nullptr);
}

}  // namespace lvmfs
