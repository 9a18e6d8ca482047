/** Converts a VolumeMap (src/native/volume-map.ts) into the typed arrays native code reads. */
import { LvmfsError } from '../errors/index.js'
import { MAX_COPIES, type VolumeMap } from '../native/index.js'
import type { NativeVolumeSpec } from './native-session.js'

const READ_POLICY = { 'primary': 0, 'first-fresh': 1, 'round-robin': 2 } as const
const WRITE_SCHEDULE = { parallel: 0, sequential: 1 } as const

export function toNativeSpec(map: VolumeMap): NativeVolumeSpec {
  const count = map.extents.length
  if (map.extentBytes <= 0 || count * map.extentBytes < map.sizeBytes) {
    throw new LvmfsError('ENGINE_USAGE', 'volume map does not cover the volume', {
      context: { sizeBytes: map.sizeBytes, extentBytes: map.extentBytes, extents: count },
    })
  }
  const copyCounts = new Uint8Array(count)
  const fds = new Int32Array(count * MAX_COPIES).fill(-1)
  const offsets = new Float64Array(count * MAX_COPIES)
  const stale = new Uint8Array(count * MAX_COPIES)
  map.extents.forEach((extent, index) => {
    if (extent.copies.length < 1 || extent.copies.length > MAX_COPIES) {
      throw new LvmfsError('ENGINE_USAGE', `extent ${index} has ${extent.copies.length} copies`, {
        detail: `Expected 1 to ${MAX_COPIES}.`,
      })
    }
    copyCounts[index] = extent.copies.length
    extent.copies.forEach((copy, c) => {
      fds[index * MAX_COPIES + c] = copy.fd
      offsets[index * MAX_COPIES + c] = copy.offsetBytes
      stale[index * MAX_COPIES + c] = !copy.stale ? 0 : copy.writeOnly === true ? 2 : 1
    })
  })
  return { sizeBytes: map.sizeBytes, extentBytes: map.extentBytes, gateBytes: map.gateBytes,
    readPolicy: READ_POLICY[map.readPolicy], writeSchedule: WRITE_SCHEDULE[map.writeSchedule],
    readOnly: map.readOnly, copyCounts, fds, offsets, stale, dirtyChunkBytes: map.dirtyChunkBytes ?? 0,
    ...(map.thin === undefined ? {} : { thin: map.thin }) }
}
