/** 4 KiB blocks that name their own offset and write sequence, checked after crashes. */
import { createHash } from 'node:crypto'

export function stamp(offsetBytes: number, sequence: number): Buffer {
  const block = Buffer.alloc(4096)
  block.writeBigUInt64LE(BigInt(offsetBytes), 0)
  block.writeBigUInt64LE(BigInt(sequence), 8)
  createHash('sha256').update(block.subarray(0, 16)).digest().copy(block, 16)
  for (let i = 48; i < 4096; i += 32) block.copy(block, i, 16, 48)
  return block
}

/** The sequence a block carries, or undefined when it is not an intact stamp for this offset. */
export function readStamp(block: Buffer, offsetBytes: number): number | undefined {
  if (block.readBigUInt64LE(0) !== BigInt(offsetBytes)) return undefined
  const sequence = Number(block.readBigUInt64LE(8))
  return stamp(offsetBytes, sequence).equals(block) ? sequence : undefined
}
