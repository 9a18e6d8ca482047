/**
 * Format v1 codecs: property-based round trips (fast-check) and corruption detection.
 * Every decoder either returns the encoded value or throws a typed LvmfsError (ENGINE_CORRUPT
 * or LVM_BADVERSION); any single-bit flip inside checksummed bytes is detected; a copy read
 * from another place (pv, area, slot) is rejected; torn frames are rejected.
 */
import t from 'tap'
import fc from 'fast-check'
import { isLvmfsError } from '../../../src/errors/index.js'
import {
  ZERO_ID, computeLayout, crc32c, decodeDescriptorBody, decodePvLabel, decodeVgdaCopy, decodeVgsaCopy,
  encodeDescriptorBody, encodePvLabel, encodeVgdaCopy, encodeVgsaCopy, pickPvLabel, vgdaFrameBytes,
  bitmapBytes, type PvLabel, type VgsaRecord,
} from '../../../src/format/index.js'
import type { LvDescriptor, VgDescriptor } from '../../../src/lvm/index.js'

const hexId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'))
  .filter((id) => id !== ZERO_ID)
const name = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,20}$/)
const json: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(fc.string({ maxLength: 8 }),
  fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 4 })

const labelArb: fc.Arbitrary<PvLabel> = fc.record({
  pvId: hexId, vgId: fc.oneof(hexId, fc.constant(ZERO_ID)), labelSeq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  ppSizeLog2: fc.integer({ min: 16, max: 34 }), createdAtMs: fc.integer({ min: 0, max: 2 ** 50 }),
}).map((r) => {
  const layout = computeLayout()
  const inVg = r.vgId !== ZERO_ID
  const ppCount = inVg ? 3 : 0
  return { ...layout, ...r, ppSizeLog2: inVg ? r.ppSizeLog2 : 0, ppCount, sectorBytes: 512,
    deviceSizeBytes: layout.dataOffsetBytes + ppCount * 2 ** r.ppSizeLog2 + 4096 }
})

/** Random valid descriptors: PVs, then LVs whose LPs take PPs in order (no overlap). */
const descriptorArb: fc.Arbitrary<VgDescriptor> = fc.record({
  vgId: hexId, name, seq: fc.integer({ min: 1, max: 2 ** 40 }), ts: fc.integer({ min: 0, max: 2 ** 45 }),
  ppSizeLog2: fc.integer({ min: 16, max: 34 }),
  pvs: fc.array(fc.record({ pvId: hexId, lastPath: fc.string({ maxLength: 30 }), removed: fc.boolean() }),
    { minLength: 1, maxLength: 6 }),
  lvs: fc.array(fc.record({ name, copies: fc.constantFrom(1, 2, 3), lps: fc.integer({ min: 0, max: 12 }),
    strict: fc.constantFrom('y', 'n', 's'), schedule: fc.constantFrom('p', 'ps', 'pr', 's'),
    mwc: fc.constantFrom('active', 'passive', 'off'), ext: json, jump: fc.integer({ min: 0, max: 3 }) }),
  { maxLength: 6 }),
}).map((r) => {
  const next = r.pvs.map(() => 0)
  const lvs: LvDescriptor[] = r.lvs.map((lv, i) => {
    const lps = Array.from({ length: lv.lps }, (_, lp) => Array.from({ length: lv.copies }, (_, k) => {
      const pvIndex = (k + (lp % 3 === 0 ? lv.jump : 0)) % r.pvs.length
      return { pvIndex, pp: next[pvIndex]!++ }
    }))
    return { lvId: i + 1, name: `${lv.name}${i}`, copies: lv.copies as 1 | 2 | 3, strict: lv.strict as 'y',
      schedule: lv.schedule as 'p', mwc: lv.mwc as 'off', lps, ext: lv.ext as LvDescriptor['ext'] }
  })
  const pvs = r.pvs.map((pv, i) => ({ ...pv, pvId: pv.pvId.slice(0, 30) + i.toString(16).padStart(2, '0'),
    ppCount: next[i]! + 2 }))
  return { vgId: r.vgId, name: r.name, seq: r.seq, timestampMs: r.ts, ppSizeBytes: 2 ** r.ppSizeLog2, pvs, lvs,
    nextLvId: lvs.length + 1, descriptorCopies: pvs.map((_, pvIndex) => ({ pvIndex, area: 0 as const })) }
})

const recordArb: fc.Arbitrary<VgsaRecord> = fc.record({
  vgId: hexId, seq: fc.integer({ min: 0, max: 2 ** 50 }),
  pvs: fc.array(fc.record({ pvId: hexId, missing: fc.boolean(), ppCount: fc.integer({ min: 0, max: 300 }),
    seed: fc.integer() }), { maxLength: 5 }),
  dirtyLvs: fc.uniqueArray(fc.integer({ min: 1, max: 2 ** 32 - 1 }), { maxLength: 5 }),
}).map((r) => ({ ...r, dirtyLvs: [...r.dirtyLvs].sort((a, b) => a - b), pvs: r.pvs.map((pv) => {
  const stale = new Uint8Array(bitmapBytes(pv.ppCount))
  for (let pp = 0; pp < pv.ppCount; pp++) if (((pv.seed >>> (pp % 31)) & 1) === 1) stale[pp >> 3]! |= 1 << (pp & 7)
  return { pvId: pv.pvId, missing: pv.missing, ppCount: pv.ppCount, stale }
}) }))

function typedFailure(fn: () => unknown): boolean {
  try {
    fn()
    return false
  } catch (error) {
    return isLvmfsError(error) && (error.code === 'ENGINE_CORRUPT' || error.code === 'LVM_BADVERSION')
  }
}

const SELF = { pvId: '1'.repeat(32), area: 1, slot: 0 }

void t.test('PV label: round trip, single-bit flips detected, copy position checked', async (t) => {
  fc.assert(fc.property(labelArb, fc.nat(), (label, flip) => {
    const bytes = encodePvLabel(label, 1)
    t.same(decodePvLabel(bytes, 1), label)
    if (!typedFailure(() => decodePvLabel(bytes, 0))) return false
    const bad = new Uint8Array(bytes)
    bad[flip % 140]! ^= 1 << (flip % 8)
    return typedFailure(() => decodePvLabel(bad, 1))
  }), { numRuns: 300 })
})

void t.test('PV label: the valid copy with the highest labelSeq wins; one damaged copy is survived', async (t) => {
  const label = fc.sample(labelArb, 1)[0]!
  const newer = { ...label, labelSeq: label.labelSeq === 0 ? 1 : label.labelSeq - 1 }
  const a = encodePvLabel(label, 0)
  const b = encodePvLabel(newer, 1)
  t.equal(pickPvLabel(a, b).labelSeq, Math.max(label.labelSeq, newer.labelSeq))
  const damaged = new Uint8Array(a)
  damaged[30]! ^= 4
  t.equal(pickPvLabel(damaged, b).labelSeq, newer.labelSeq)
  t.throws(() => pickPvLabel(damaged, new Uint8Array(4096)), { code: 'ENGINE_CORRUPT' })
})

void t.test('descriptor body: round trip of random valid descriptors', async (t) => {
  fc.assert(fc.property(descriptorArb, (d) => {
    t.same(decodeDescriptorBody(encodeDescriptorBody(d)), d)
    return true
  }), { numRuns: 300 })
})

void t.test('VGDA copy: round trip; bit flips, torn frames and misplaced copies are rejected', async (t) => {
  fc.assert(fc.property(descriptorArb, descriptorArb, fc.nat(), (d, other, flip) => {
    const body = encodeDescriptorBody(d)
    const frame = encodeVgdaCopy({ vgId: d.vgId, seq: d.seq, timestampMs: d.timestampMs, body, bodyCrc: crc32c(body),
      self: SELF })
    const decoded = decodeVgdaCopy(frame, SELF)
    t.same(decodeDescriptorBody(decoded.body), d)
    const checked = [...Array(80).keys(), ...Array.from({ length: body.length }, (_, i) => 512 + i),
      ...Array.from({ length: 60 }, (_, i) => frame.length - 512 + i)]
    const bad = new Uint8Array(frame)
    bad[checked[flip % checked.length]!]! ^= 1 << (flip % 8)
    if (!typedFailure(() => decodeVgdaCopy(bad, SELF))) return false
    if (!typedFailure(() => decodeVgdaCopy(frame, { ...SELF, slot: 1 }))) return false
    const otherBody = encodeDescriptorBody({ ...other, vgId: d.vgId })
    const old = encodeVgdaCopy({ vgId: d.vgId, seq: d.seq - 1, timestampMs: 0, body: otherBody,
      bodyCrc: crc32c(otherBody), self: SELF })
    const torn = new Uint8Array(Math.max(frame.length, old.length))
    torn.set(old)
    torn.set(frame.subarray(0, 512 * (1 + (flip % Math.max(1, frame.length / 512 - 1)))))
    return typedFailure(() => decodeVgdaCopy(torn, SELF))
  }), { numRuns: 300 })
  t.equal(vgdaFrameBytes(1), 1536)
})

void t.test('VGSA copy: round trip, any single-bit flip detected, misplaced copy rejected', async (t) => {
  fc.assert(fc.property(recordArb, fc.nat(), (record, flip) => {
    const bytes = encodeVgsaCopy(record, SELF)
    t.same(decodeVgsaCopy(bytes, SELF), record)
    const bad = new Uint8Array(bytes)
    bad[flip % bytes.length]! ^= 1 << (flip % 8)
    return typedFailure(() => decodeVgsaCopy(bad, SELF)) &&
      typedFailure(() => decodeVgsaCopy(bytes, { ...SELF, area: 0 }))
  }), { numRuns: 300 })
})

void t.test('decoders given random bytes throw only typed errors', async (t) => {
  let typed = 0
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.boolean(), (bytes, magic) => {
    const input = new Uint8Array(Math.max(bytes.length, 4096))
    input.set(bytes)
    if (magic) input.set(Buffer.from('LVMFSVDA'))
    for (const fn of [() => decodePvLabel(input, 0), () => decodeVgdaCopy(input, SELF),
      () => decodeVgsaCopy(input, SELF), () => decodeDescriptorBody(bytes)]) {
      if (!typedFailure(fn)) return false
      typed++
    }
    return true
  }), { numRuns: 500 })
  t.ok(typed >= 2000)
})

void t.test('descriptor body: semantic field errors name the field', async (t) => {
  const d = fc.sample(descriptorArb, 1)[0]!
  const raw = JSON.parse(new TextDecoder().decode(encodeDescriptorBody(d))) as Record<string, unknown>
  for (const [field, value] of [['v', 2], ['vgId', 'xyz'], ['ppSizeLog2', 8], ['pvs', {}], ['extra', 1]] as const) {
    const bytes = new TextEncoder().encode(JSON.stringify({ ...raw, [field]: value }))
    t.throws(() => decodeDescriptorBody(bytes), field === 'v' ? { code: 'LVM_BADVERSION' } : { code: 'ENGINE_CORRUPT' },
      field)
  }
})

void t.test('encoders refuse out-of-range fields', async (t) => {
  const label = fc.sample(labelArb, 1)[0]!
  t.throws(() => encodePvLabel({ ...label, labelSeq: 2 ** 32 }, 0))
  t.throws(() => encodePvLabel(label, 2))
  t.throws(() => encodeVgdaCopy({ vgId: label.pvId, seq: -1, timestampMs: 0, body: new Uint8Array(1), bodyCrc: 0,
    self: SELF }))
})
