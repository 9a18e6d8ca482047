/**
 * Activity-log record codec (format/mwc-log.ts): round trip, every corruption rejected by field,
 * the ring scan (newest by seq, a torn multi-block newest record falls back to the previous
 * one, an area of garbage is reported unreadable), ring placement never overwriting the newest
 * record, and golden fixtures: v1 records written by lvmfs before the activity log still decode,
 * and v2 encodes byte for byte (test/golden/format/mwc; regenerate only a new version's files,
 * with LVMFS_WRITE_GOLDEN=1).
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  MWC_BLOCK_BYTES, WHOLE_LV, decodeMwcRecord, encodeMwcRecord, maxRecordBlocks, nextRecordBlock, scanMwcArea,
  type MwcRecord,
} from '../../../src/format/mwc-log.js'

const DIR = fileURLToPath(new URL('../../golden/format/mwc/', import.meta.url))
const who = { vgId: 'f'.repeat(32), pvId: '0'.repeat(32) }
const record: MwcRecord = {
  seq: 2 ** 40 + 7,
  entries: [{ lvId: 1, ltgIndex: 0 }, { lvId: 2, ltgIndex: 2 ** 32 - 1 }],
  cursors: [{ lvId: 1, lp: 5, force: true, targetMask: 6, offsetInLpBytes: 3 * 2 ** 20 }],
  dirty: [{ lvId: 1, lp: 9, chunkBytesLog2: 16, bits: Uint8Array.from([0x81, 0, 0, 0, 0, 0, 0, 0x40]) },
    { lvId: 2, lp: WHOLE_LV, chunkBytesLog2: 16, bits: new Uint8Array(0) }],
}

function areaWith(blocks: number, ...records: Array<[MwcRecord, number]>): Buffer {
  const area = Buffer.alloc(blocks * MWC_BLOCK_BYTES)
  for (const [rec, blockIndex] of records) {
    encodeMwcRecord(rec, { ...who, blockIndex }).copy(area, blockIndex * MWC_BLOCK_BYTES)
  }
  return area
}

void t.test('round trip; an all-zero block is empty', async (t) => {
  const bytes = encodeMwcRecord(record, { ...who, blockIndex: 0 })
  t.equal(bytes.length, MWC_BLOCK_BYTES)
  t.same(decodeMwcRecord(bytes, { ...who, blockIndex: 0 }), { record, blockCount: 1 })
  t.equal(decodeMwcRecord(Buffer.alloc(MWC_BLOCK_BYTES), { ...who, blockIndex: 0 }), null)
})

void t.test('a record with 1237 active extents spans several blocks and round-trips', async (t) => {
  const big: MwcRecord = { ...record,
    entries: Array.from({ length: 1237 }, (_, index) => ({ lvId: 1, ltgIndex: index * 3 })) }
  const area = areaWith(64, [big, 5])
  const found = decodeMwcRecord(area, { ...who, blockIndex: 5 })
  t.equal(found?.blockCount, 3, '64 + 1237 * 8 + 32 + 40 bytes take three blocks')
  t.same(found?.record, big)
})

void t.test('corruption and misdirection are rejected naming the field', async (t) => {
  const cases: Array<[string, (bytes: Buffer) => void, Record<string, unknown>, string]> = [
    ['flipped body byte', (bytes) => { bytes[100]! ^= 1 }, {}, 'crc32c'],
    ['bad magic', (bytes) => { bytes[0] = 0x41 }, {}, 'magic'],
    ['bad version', (bytes) => { bytes.writeUInt16LE(9, 8) }, {}, 'version'],
    ['length past the area', (bytes) => { bytes.writeUInt16LE(99, 10) }, {}, 'blockCount'],
    ['record of another PV', () => {}, { pvId: '1'.repeat(32) }, 'pvTag'],
    ['record of another VG', () => {}, { vgId: 'e'.repeat(32) }, 'vgTag'],
  ]
  for (const [name, damage, where, field] of cases) {
    const area = areaWith(4, [record, 1])
    damage(area.subarray(MWC_BLOCK_BYTES))
    t.throws(() => decodeMwcRecord(area, { ...who, ...where, blockIndex: 1 }), { code: 'ENGINE_CORRUPT', context: { field } }, name)
  }
  const moved = Buffer.alloc(4 * MWC_BLOCK_BYTES)
  encodeMwcRecord(record, { ...who, blockIndex: 1 }).copy(moved, 2 * MWC_BLOCK_BYTES)
  t.throws(() => decodeMwcRecord(moved, { ...who, blockIndex: 2 }), { code: 'ENGINE_CORRUPT', context: { field: 'blockIndex' } },
    'a record found at another block than it was written to')
})

void t.test('scan: newest by seq; a torn multi-block record falls back; garbage is unreadable', async (t) => {
  const big: MwcRecord = { ...record,
    entries: Array.from({ length: 1000 }, (_, index) => ({ lvId: 1, ltgIndex: index })) }
  const area = areaWith(16, [{ ...record, seq: 10 }, 0], [{ ...big, seq: 11 }, 1])
  t.equal(scanMwcArea(area, who).newest?.record.seq, 11)
  t.same(scanMwcArea(area, who).newest?.blockCount, 2)
  area.fill(0, 2 * MWC_BLOCK_BYTES, 3 * MWC_BLOCK_BYTES) // the second block of seq 11 never reached the disk
  const scan = scanMwcArea(area, who)
  t.equal(scan.newest?.record.seq, 10, 'falls back to the previous complete record')
  t.equal(scan.unreadable, false)
  t.same(scanMwcArea(Buffer.alloc(8 * MWC_BLOCK_BYTES), who), { newest: null, unreadable: false }, 'never written')
  const garbage = Buffer.alloc(8 * MWC_BLOCK_BYTES, 0x5a)
  t.same(scanMwcArea(garbage, who), { newest: null, unreadable: true }, 'bytes but no valid record')
})

void t.test('ring placement never overlaps the newest record', async (t) => {
  for (const areaBlocks of [2, 3, 7, 64]) {
    const max = maxRecordBlocks(areaBlocks)
    let newest: { blockIndex: number, blockCount: number } | null = null
    for (let step = 0; step < 200; step++) {
      const blockCount = 1 + (step * 7 % max)
      const blockIndex = nextRecordBlock(newest, blockCount, areaBlocks)
      t.ok(blockIndex + blockCount <= areaBlocks, 'inside the area')
      if (newest !== null) {
        const overlaps = blockIndex < newest.blockIndex + newest.blockCount &&
          newest.blockIndex < blockIndex + blockCount
        if (overlaps) t.fail(`area ${areaBlocks}: record at ${blockIndex}+${blockCount} overlaps ${newest.blockIndex}+${newest.blockCount}`)
      }
      newest = { blockIndex, blockCount }
    }
  }
  t.throws(() => nextRecordBlock(null, 22, 64), 'a record larger than a third of the area is refused')
})

void t.test('golden: a v1 record (before the activity log) still decodes', async (t) => {
  const described = JSON.parse(readFileSync(`${DIR}v1-record-slot5.json`, 'utf8'))
  const area = Buffer.alloc(8 * MWC_BLOCK_BYTES)
  readFileSync(`${DIR}v1-record-slot5.bin`).copy(area, 5 * MWC_BLOCK_BYTES)
  const place = { vgId: described.place.vgId, pvId: described.place.pvId }
  const scan = scanMwcArea(area, place)
  t.same(scan.newest?.record, { ...described.record, dirty: [] })
  t.equal(scan.newest?.blockIndex, 5)
  t.equal(nextRecordBlock(scan.newest, 3, 64), 6, 'the first v2 record goes after it')
})

void t.test('golden: v2 encodes byte for byte', async (t) => {
  const place = { vgId: '00112233445566778899aabbccddeeff', pvId: '0123456789abcdef0123456789abcdef', blockIndex: 7 }
  const fixture = { ...record,
    entries: Array.from({ length: 600 }, (_, index) => ({ lvId: 1 + (index % 2), ltgIndex: index * 5 })) }
  const bytes = encodeMwcRecord(fixture, place)
  if (process.env['LVMFS_WRITE_GOLDEN'] === '1') {
    writeFileSync(`${DIR}v2-record-block7.bin`, bytes)
    writeFileSync(`${DIR}v2-record-block7.json`, JSON.stringify({ place, record: { ...fixture,
      dirty: fixture.dirty.map((d) => ({ ...d, bits: Buffer.from(d.bits).toString('hex') })) } }, null, 2) + '\n')
  }
  const stored = readFileSync(`${DIR}v2-record-block7.bin`)
  t.ok(stored.equals(bytes), 'encoder output equals the stored fixture')
  const area = Buffer.alloc(16 * MWC_BLOCK_BYTES)
  stored.copy(area, 7 * MWC_BLOCK_BYTES)
  t.same(decodeMwcRecord(area, place)?.record, fixture)
})
