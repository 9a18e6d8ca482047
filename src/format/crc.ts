import { crc32c as nativeCrc32c } from '@node-rs/crc32'

/** crc32c (Castagnoli) of a byte range; every lvmfs checksum uses it. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start)
  return nativeCrc32c(view) >>> 0
}
