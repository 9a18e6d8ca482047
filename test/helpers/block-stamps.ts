/**
 * 4 KiB blocks that carry their block index and write sequence, sealed with a crc32c, for the
 * kill -9 tests of the mirror and replication engines: a read-back block is never written,
 * torn, or exactly one stamped write.
 */
import { crc32c } from '@node-rs/crc32'

export const BLOCK_BYTES = 4096

export function stampBlock(block: Buffer, index: number, seq: number): void {
  block.writeUInt32LE(index, 0)
  block.writeUInt32LE(seq, 4)
  for (let at = 8; at < BLOCK_BYTES - 4; at += 4) block.writeUInt32LE((seq * 2654435761 + at) >>> 0, at)
  block.writeUInt32LE(crc32c(block.subarray(0, BLOCK_BYTES - 4)) >>> 0, BLOCK_BYTES - 4)
}

/** undefined for a never-written block; null for a torn one; else the stamp. */
export function readStamp(block: Buffer): { index: number, seq: number } | null | undefined {
  if (block.every((byte) => byte === 0)) return undefined
  if ((crc32c(block.subarray(0, BLOCK_BYTES - 4)) >>> 0) !== block.readUInt32LE(BLOCK_BYTES - 4)) return null
  return { index: block.readUInt32LE(0), seq: block.readUInt32LE(4) }
}
