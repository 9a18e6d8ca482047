/**
 * Golden fixtures of format v1 (test/golden/format/v1): fixed inputs whose encodings are kept
 * as .bin files with a .json description. The test re-encodes the inputs and compares byte for
 * byte, and decodes the stored bytes back to the inputs, so any change to the v1 layout fails
 * here. A new format version adds a folder; v1 files are never edited. Regenerate (only when
 * creating a new version's folder) with LVMFS_WRITE_GOLDEN=1.
 */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  computeLayout, crc32c, decodeDescriptorBody, decodePvLabel, decodeVgdaCopy, decodeVgsaCopy,
  encodeDescriptorBody, encodePvLabel, encodeVgdaCopy, encodeVgsaCopy, type PvLabel, type VgsaRecord,
} from '../../../src/format/index.js'
import type { VgDescriptor } from '../../../src/lvm/index.js'

const DIR = fileURLToPath(new URL('../../golden/format/v1/', import.meta.url))
const PV0 = '0123456789abcdef0123456789abcdef'
const PV1 = 'fedcba9876543210fedcba9876543210'
const VG = '00112233445566778899aabbccddeeff'

const label: PvLabel = { ...computeLayout(), labelSeq: 2, pvId: PV0, vgId: VG, deviceSizeBytes: 64 * 1024 * 1024,
  sectorBytes: 512, ppSizeLog2: 22, ppCount: 15, createdAtMs: 1_700_000_000_000 }

const descriptor: VgDescriptor = { vgId: VG, name: 'vg0', seq: 7, timestampMs: 1_700_000_000_123, ppSizeBytes: 4 << 20,
  pvs: [{ pvId: PV0, lastPath: '/dev/loop0', ppCount: 15, removed: false },
    { pvId: PV1, lastPath: '/dev/loop1', ppCount: 15, removed: false }],
  lvs: [{ lvId: 1, name: 'data', copies: 2, strict: 'y', schedule: 'p', mwc: 'active',
    lps: [0, 1, 2].map((lp) => [{ pvIndex: 0, pp: lp }, { pvIndex: 1, pp: lp }]), ext: { replica: { site: 'b' } } },
  { lvId: 3, name: 'log', copies: 1, strict: 'n', schedule: 's', mwc: 'off',
    lps: [[{ pvIndex: 1, pp: 5 }], [{ pvIndex: 0, pp: 9 }]], ext: {} }],
  nextLvId: 4, descriptorCopies: [{ pvIndex: 0, area: 0 }, { pvIndex: 0, area: 1 }, { pvIndex: 1, area: 0 }] }

const status: VgsaRecord = { vgId: VG, seq: 12, dirtyLvs: [1],
  pvs: [{ pvId: PV0, missing: false, ppCount: 15, stale: Uint8Array.from([0b100, 0, 0, 0]) },
    { pvId: PV1, missing: true, ppCount: 15, stale: Uint8Array.from([0, 0, 0, 0]) }] }

// Every optional LV key at once (al, bmChunkLog2, unsynced, act, perm): written only when set,
// so the descriptor above keeps its bytes, and these bytes are what a later lvmfs must read.
const optional: VgDescriptor = { ...descriptor, lvs: [{ ...descriptor.lvs[0]!, alExtents: 96,
  bitmapChunkBytes: 1 << 20, unsyncedCopies: 1, inactive: true, readOnly: true }] }

const body = encodeDescriptorBody(descriptor)
const self = { pvId: PV0, area: 1, slot: 1 }
const fixtures = {
  'pv-label-copy1': { bytes: encodePvLabel(label, 1), describe: { ...label, copyIndex: 1 } },
  'vgda-copy': { bytes: encodeVgdaCopy({ vgId: VG, seq: descriptor.seq, timestampMs: descriptor.timestampMs, body,
    bodyCrc: crc32c(body), self }), describe: { self, descriptor } },
  'descriptor-optional-keys': { bytes: encodeDescriptorBody(optional), describe: optional },
  'vgsa-copy': { bytes: encodeVgsaCopy(status, { pvId: PV1, area: 0, slot: 1 }),
    describe: { self: { pvId: PV1, area: 0, slot: 1 }, status: { ...status,
      pvs: status.pvs.map((p) => ({ ...p, stale: Buffer.from(p.stale).toString('hex') })) } } },
}

if (process.env['LVMFS_WRITE_GOLDEN'] === '1') {
  for (const [name, f] of Object.entries(fixtures)) {
    writeFileSync(join(DIR, `${name}.bin`), f.bytes)
    writeFileSync(join(DIR, `${name}.json`), JSON.stringify(f.describe, null, 2) + '\n')
  }
}

for (const [name, f] of Object.entries(fixtures)) {
  void t.test(`golden v1 ${name} encodes byte for byte`, async (t) => {
    const path = join(DIR, `${name}.bin`)
    t.ok(existsSync(path), `${path} exists`)
    t.equal(Buffer.compare(readFileSync(path), Buffer.from(f.bytes)), 0)
  })
}

void t.test('golden v1 fixtures decode to their inputs', async (t) => {
  const read = (name: string): Uint8Array => new Uint8Array(readFileSync(join(DIR, `${name}.bin`)))
  t.same(decodePvLabel(read('pv-label-copy1'), 1), label)
  const copy = decodeVgdaCopy(read('vgda-copy'), self)
  t.equal(copy.header.seq, 7)
  t.same(decodeDescriptorBody(copy.body), descriptor)
  t.same(decodeVgsaCopy(read('vgsa-copy'), { pvId: PV1, area: 0, slot: 1 }), status)
  t.same(decodeDescriptorBody(read('descriptor-optional-keys')), optional)
})
