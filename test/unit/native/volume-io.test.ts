/**
 * Native volume I/O without FUSE (native/volume-io.cc through the addon's volumeIo entry points):
 * every failed (extent, copy) of a request is reported with its outcome, however many extents
 * the request spans; a short backing read fails over and never returns zeros; fsync and
 * fallocate failures are reported per fd and per copy.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FaultBit, setFdFault, volumeIo, type NativeFailure } from '../../../src/fuse/native-session.js'
import { toNativeSpec } from '../../../src/fuse/volume-spec.js'
import type { VolumeMap } from '../../../src/native/volume-map.js'
import { FALLOC_FL_PUNCH_HOLE } from '../../../src/native/addon.js'

const EXTENT = 64 << 10
const EXTENTS = 24

type StaleCopy = (extent: number, copy: number) => boolean

interface Bed {
  readonly fds: number[]
  map(copies: number, options?: Partial<VolumeMap> & { staleCopy?: StaleCopy }): VolumeMap
}

/** Backing files pv0..pvN-1, each holding extent e of copy c at e * EXTENT. */
function bed(t: Test, files: number): Bed {
  const dir = t.testdir()
  const fds: number[] = []
  for (let i = 0; i < files; i++) {
    const path = join(dir, `pv${i}.img`)
    writeFileSync(path, Buffer.alloc(0))
    const fd = openSync(path, 'r+')
    ftruncateSync(fd, EXTENT * EXTENTS)
    fds.push(fd)
  }
  t.teardown(() => {
    for (const fd of fds) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
  })
  return {
    fds,
    map(copies, options = {}) {
      return {
        sizeBytes: EXTENT * EXTENTS, extentBytes: EXTENT, gateBytes: 0, readPolicy: 'primary',
        writeSchedule: 'parallel', readOnly: false,
        extents: Array.from({ length: EXTENTS }, (_v, e) => ({
          copies: Array.from({ length: copies }, (_w, c) => ({ fd: fds[c]!, offsetBytes: e * EXTENT,
            stale: options.staleCopy?.(e, c) ?? false })),
        })),
        ...options,
      }
    },
  }
}

function pattern(length: number, seed: number): Buffer {
  const buffer = Buffer.alloc(length)
  for (let i = 0; i < length; i += 4) buffer.writeUInt32LE((i * 2654435761 + seed) >>> 0, i)
  return buffer
}

function backing(fd: number, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length)
  readSync(fd, out, 0, length, offset)
  return out
}

const failed = (failures: NativeFailure[]): string[] => failures.map((f) => `${f.extent}/${f.copy}${f.lost ? '!' : ''}`)

void t.test('a 1 MiB write over 17 extents reports a failed copy in every extent it hit', async (t) => {
  const b = bed(t, 2)
  // Copy 1 fails from extent 4 on: the old two-segment table saw none of these.
  setFdFault(b.fds[1]!, FaultBit.WRITE, 4 * EXTENT, 20 * EXTENT)
  const data = pattern(1 << 20, 1)
  const offset = EXTENT / 2  // 1 MiB from mid-extent 0 spans extents 0..16
  const result = volumeIo().write(toNativeSpec(b.map(2)), offset, data)
  t.same(failed(result.failures), Array.from({ length: 13 }, (_v, i) => `${i + 4}/1`),
    'extents 4..16 failed on copy 1, and no other copy or extent is reported')
  t.equal(result.lostExtents, 0, 'copy 0 holds every extent: nothing lost')
  t.ok(backing(b.fds[0]!, offset, data.length).equals(data), 'copy 0 holds the whole write')
  t.ok(backing(b.fds[1]!, offset, 4 * EXTENT - offset).equals(data.subarray(0, 4 * EXTENT - offset)),
    'copy 1 holds the extents before the fault')
})

void t.test('a linear write whose later extents fail is lost there, not acknowledged', async (t) => {
  const b = bed(t, 2)
  // A linear volume straddling two PVs: extents 0..7 on pv0, the rest on pv1 (which fails).
  const map = b.map(1)
  const straddling: VolumeMap = { ...map, extents: map.extents.map((extent, e) => ({
    copies: [{ ...extent.copies[0]!, fd: e < 8 ? b.fds[0]! : b.fds[1]! }] })) }
  setFdFault(b.fds[1]!, FaultBit.WRITE)
  const result = volumeIo().write(toNativeSpec(straddling), 0, pattern(1 << 20, 2))
  t.same(failed(result.failures), Array.from({ length: 8 }, (_v, i) => `${i + 8}/0!`),
    'every extent on the failing PV is reported lost')
  t.equal(result.lostExtents, 8, 'eight extents reached no copy')
})

void t.test('an extent whose copies all failed is lost; one with a stale copy skipped is not', async (t) => {
  const b = bed(t, 3)
  setFdFault(b.fds[0]!, FaultBit.WRITE, 2 * EXTENT, EXTENT)
  setFdFault(b.fds[1]!, FaultBit.WRITE, 2 * EXTENT, 2 * EXTENT)
  const map = b.map(3, { staleCopy: (e, c) => c === 2 && (e === 2 || e === 3) })
  const result = volumeIo().write(toNativeSpec(map), 0, pattern(5 * EXTENT, 3))
  t.same(failed(result.failures), ['2/0!', '2/1!', '3/1'],
    'extent 2 failed on both written copies (its third is stale): lost; extent 3 kept copy 0')
  t.equal(result.lostExtents, 1)
})

void t.test('write-through copies are written but do not count as holding the data', async (t) => {
  const b = bed(t, 2)
  const base = b.map(2)
  const map: VolumeMap = { ...base, extents: base.extents.map((extent) => ({ copies: [extent.copies[0]!,
    { ...extent.copies[1]!, stale: true, writeOnly: true }] })) }
  setFdFault(b.fds[0]!, FaultBit.WRITE, 0, EXTENT)
  const data = pattern(2 * EXTENT, 4)
  const result = volumeIo().write(toNativeSpec(map), 0, data)
  t.same(failed(result.failures), ['0/0!'], 'extent 0 is lost: only its write-through copy took it')
  t.ok(backing(b.fds[1]!, 0, 2 * EXTENT).equals(data), 'the resync target was written through')
})

void t.test('a failed request over more extents than one record table holds is reported whole', async (t) => {
  const b = bed(t, 3)
  for (const fd of b.fds) setFdFault(fd, FaultBit.WRITE)
  // 4 KiB extents: 384 extents x 3 copies = 1,152 failures, over four tables of 251 records.
  const small = 4096
  const count = (EXTENT * EXTENTS) / small
  const map: VolumeMap = { ...b.map(3), extentBytes: small, extents: Array.from({ length: count }, (_v, e) => ({
    copies: b.fds.map((fd) => ({ fd, offsetBytes: e * small, stale: false })) })) }
  const result = volumeIo().write(toNativeSpec(map), 0, pattern(count * small, 5))
  t.equal(result.failures.length, count * 3, 'every (extent, copy) reported')
  t.equal(new Set(result.failures.map((f) => `${f.extent}/${f.copy}`)).size, count * 3, 'each once')
  t.equal(result.lostExtents, count)
})

void t.test('a short backing read fails over to another copy, and is EIO without one, never zeros', async (t) => {
  const b = bed(t, 2)
  const data = pattern(4 * EXTENT, 6)
  for (const fd of b.fds) writeSync(fd, data, 0, data.length, 0)
  // pv0 is truncated in the middle of extent 1: its copy of extents 1.. ends early.
  ftruncateSync(b.fds[0]!, EXTENT + 4096)
  const mirrored = volumeIo().read(toNativeSpec(b.map(2)), EXTENT, 2 * EXTENT)
  t.equal(mirrored.errno, 0, 'the read succeeds')
  t.ok(mirrored.data.equals(data.subarray(EXTENT, 3 * EXTENT)), 'with the bytes of the other copy')
  t.same(failed(mirrored.copyErrors), ['1/0', '2/0'], 'both short copy reads were reported')
  const linear = volumeIo().read(toNativeSpec(b.map(1)), EXTENT, EXTENT)
  t.equal(linear.errno, 5, 'one copy, truncated: EIO')
})

void t.test('fsync reports each backing fd that failed', async (t) => {
  const b = bed(t, 2)
  t.same(volumeIo().fsync(toNativeSpec(b.map(2)), true), { errno: 0, failures: [] }, 'clean sync')
  setFdFault(b.fds[1]!, FaultBit.SYNC)
  const result = volumeIo().fsync(toNativeSpec(b.map(2)), false)
  t.equal(result.errno, 5)
  t.same(result.failures, [{ extent: null, copy: b.fds[1], errno: 5, lost: false }], 'the failed fd is named')
})

void t.test('fallocate reports the failed copies of every extent, and refusals by every copy', async (t) => {
  const b = bed(t, 2)
  for (const fd of b.fds) writeSync(fd, pattern(4 * EXTENT, 7), 0, 4 * EXTENT, 0)
  setFdFault(b.fds[1]!, FaultBit.WRITE, EXTENT, 2 * EXTENT)
  const result = volumeIo().fallocate(toNativeSpec(b.map(2)), FALLOC_FL_PUNCH_HOLE, 0, 4 * EXTENT)
  t.same(failed(result.failures), ['1/1', '2/1'], 'the two faulted extents of copy 1')
  t.equal(result.lostExtents, 0)
  t.ok(backing(b.fds[0]!, 0, 4 * EXTENT).equals(Buffer.alloc(4 * EXTENT)), 'copy 0 punched')
  t.ok(backing(b.fds[1]!, 3 * EXTENT, EXTENT).equals(Buffer.alloc(EXTENT)), 'copy 1 punched outside the fault')
  t.notOk(backing(b.fds[1]!, EXTENT, EXTENT).equals(Buffer.alloc(EXTENT)), 'and kept its bytes inside it')
})
