// Block hashing for checksum resync (`lvmfs resync --checksum`): one XXH3-128 digest per block
// of a byte range of an fd, computed on native threads so comparing copies never moves their
// data through JavaScript. Every range of one call is hashed on its own thread at once, so the
// copies of an LP are read in parallel.
#pragma once
#include <napi.h>
#include <stdint.h>

#include <vector>

namespace lvmfs {

constexpr size_t kBlockDigestBytes = 16;

// Hashes [offset, offset + length) of fd into one canonical (big-endian) XXH3-128 digest per
// `blockBytes` block, the last one possibly short, each seeded with `seed`. Reads in 1 MiB
// chunks through an aligned buffer (O_DIRECT fds work; an unaligned range on one falls back to
// a buffered descriptor of the same file). Honours injected read faults (faults.h) per chunk.
// 0 or -errno; a read past the end of the file is -EIO.
int HashFdBlocks(int fd, uint64_t offset, uint64_t length, uint64_t blockBytes, uint64_t seed,
                 std::vector<uint8_t>* digests);

// Exports `blockHashes(requests, blockBytes, seed) → Promise<(Buffer | errno)[]>` and the
// one-shot `xxh128(buffer, seed) → Buffer` (a reference for tests).
void InitBlockHash(Napi::Env env, Napi::Object exports);

}  // namespace lvmfs
