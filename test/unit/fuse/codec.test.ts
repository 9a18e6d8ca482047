// Request decoding: well-formed requests decode to typed records; truncated, overlong or
// garbage bytes give a typed LvmfsError and never crash or read out of range.
import fc from 'fast-check'
import t from 'tap'
import { LvmfsError } from '../../../src/errors/index.js'
import { Opcode, Size } from '../../../src/fuse/abi.js'
import { decodeRequest } from '../../../src/fuse/codec.js'
import { encodeDirents, encodeEntry, encodeInit } from '../../../src/fuse/replies.js'

function request(opcode: number, body: Uint8Array, unique = 2n, nodeid = 1n): Uint8Array {
  const bytes = new Uint8Array(Size.IN_HEADER + body.length)
  const v = new DataView(bytes.buffer)
  v.setUint32(0, bytes.length, true)
  v.setUint32(4, opcode, true)
  v.setBigUint64(8, unique, true)
  v.setBigUint64(16, nodeid, true)
  v.setUint32(32, 1234, true)
  bytes.set(body, Size.IN_HEADER)
  return bytes
}

function writeIn(offset: bigint, size: number): Uint8Array {
  const body = new Uint8Array(Size.WRITE_IN + size)
  const v = new DataView(body.buffer)
  v.setBigUint64(8, offset, true)
  v.setUint32(16, size, true)
  body.fill(0xab, Size.WRITE_IN)
  return body
}

t.test('decodes LOOKUP, WRITE above 4 GiB and BATCH_FORGET', async (t) => {
  const lookup = decodeRequest(request(Opcode.LOOKUP, new TextEncoder().encode('lv0\0')))
  t.same(lookup.body, { op: 'LOOKUP', name: 'lv0' })
  t.equal(lookup.header.pid, 1234)
  const write = decodeRequest(request(Opcode.WRITE, writeIn(5n << 30n, 16)))
  t.equal(write.body.op, 'WRITE')
  if (write.body.op === 'WRITE') {
    t.equal(write.body.offset, 5 * 2 ** 30, '64-bit offset survives')
    t.equal(write.body.data.length, 16)
  }
  const forget = new Uint8Array(8 + 32)
  const v = new DataView(forget.buffer)
  v.setUint32(0, 2, true)
  v.setBigUint64(8, 7n, true)
  v.setBigUint64(16, 3n, true)
  v.setBigUint64(24, 9n, true)
  v.setBigUint64(32, 1n, true)
  t.same(decodeRequest(request(Opcode.BATCH_FORGET, forget)).body,
    { op: 'BATCH_FORGET', forgets: [{ nodeid: 7, nlookup: 3 }, { nodeid: 9, nlookup: 1 }] })
})

const malformed: Array<[string, Uint8Array, string]> = [
  ['20 bytes of an INIT header', request(Opcode.INIT, new Uint8Array(64)).subarray(0, 20), 'FUSE_SHORT_HEADER'],
  ['READ without its read_in', request(Opcode.READ, new Uint8Array(8)), 'FUSE_SHORT_REQUEST'],
  ['WRITE claiming more data than it carries', (() => {
    const body = writeIn(0n, 16)
    new DataView(body.buffer).setUint32(16, 4096, true)
    return request(Opcode.WRITE, body)
  })(), 'FUSE_SHORT_REQUEST'],
  ['LOOKUP name without NUL', request(Opcode.LOOKUP, new TextEncoder().encode('abc')), 'FUSE_BAD_STRING'],
  ['header length disagreeing with bytes', (() => {
    const bytes = request(Opcode.STATFS, new Uint8Array(0))
    new DataView(bytes.buffer).setUint32(0, 99, true)
    return bytes
  })(), 'FUSE_BAD_LENGTH'],
  ['offset above 2^53', request(Opcode.READ, (() => {
    const body = new Uint8Array(Size.READ_IN)
    new DataView(body.buffer).setBigUint64(8, 1n << 60n, true)
    return body
  })()), 'FUSE_BAD_LENGTH'],
  ['BATCH_FORGET announcing more entries than present', request(Opcode.BATCH_FORGET, (() => {
    const body = new Uint8Array(8 + 16)
    new DataView(body.buffer).setUint32(0, 1000, true)
    return body
  })()), 'FUSE_SHORT_REQUEST'],
]

for (const [name, bytes, code] of malformed) {
  t.test(`decodeRequest() rejects ${name} with ${code}`, async (t) => {
    t.throws(() => decodeRequest(bytes), { code })
  })
}

t.test('decodeRequest() on random bytes only ever throws LvmfsError', async (t) => {
  const opcodes = Object.values(Opcode)
  fc.assert(fc.property(fc.constantFrom(...opcodes), fc.uint8Array({ maxLength: 200 }), fc.nat(240),
    (opcode, body, cut) => {
      const bytes = request(opcode, body)
      for (const candidate of [bytes, bytes.subarray(0, Math.min(cut, bytes.length))]) {
        try {
          decodeRequest(candidate)
        } catch (error) {
          if (!(error instanceof LvmfsError)) throw error
        }
      }
    }), { numRuns: 3000 })
  t.pass('no untyped exception')
})

t.test('reply encoders write the documented sizes and zero padding', async (t) => {
  const out = new Uint8Array(4096).fill(0xff)
  const attr = { ino: 2, sizeBytes: 2 ** 40, blocks: 1, atimeMs: 1500, mtimeMs: 0, ctimeMs: 0,
    mode: 0o100644, nlink: 1, uid: 0, gid: 0, blksize: 4096 }
  t.equal(encodeEntry(out, { nodeid: 2, entryValidMs: 1000, attrValidMs: 1000, attr }), 128)
  const v = new DataView(out.buffer)
  t.equal(v.getBigUint64(40 + 8, true), 1n << 40n, 'attr.size at entry_out+48')
  t.equal(v.getUint32(40 + 48, true), 500_000_000, 'atimensec')
  t.equal(v.getUint32(40 + 84, true), 0, 'attr.flags zeroed')
  out.fill(0xff)
  t.equal(encodeInit(out, { major: 7, minor: 40, maxReadahead: 0, flags: 1, flags2: 0, maxBackground: 128,
    congestionThreshold: 96, maxWrite: 1 << 20, timeGranNs: 1, maxPages: 256 }), 64)
  t.equal(v.getUint16(28, true), 256, 'max_pages at 28')
  t.equal(v.getUint32(60, true), 0, 'unused tail zeroed')
  const used = encodeDirents(out, [{ ino: 1, name: '.', type: 4 }, { ino: 2, name: 'volume', type: 8 }], 0, 4096)
  t.equal(used, 32 + 32, 'two records padded to 8 bytes')
  t.equal(v.getBigUint64(32 + 8, true), 2n, 'second cookie is index + 1')
  t.equal(encodeDirents(out, [{ ino: 1, name: 'x'.repeat(100), type: 8 }], 0, 64), 0, 'stops before overflow')
})
