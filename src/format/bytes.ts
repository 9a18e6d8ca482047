/**
 * Small helpers shared by the codecs: fixed-width fields, 128-bit ids as hex, and the typed
 * corruption error every decoder throws (ENGINE_CORRUPT naming field, expected and got).
 */
import { LvmfsError } from '../errors/index.js'

export const ID_BYTES = 16
export const ZERO_ID = '0'.repeat(ID_BYTES * 2)
const ID_PATTERN = /^[0-9a-f]{32}$/

export function isId(text: unknown): text is string {
  return typeof text === 'string' && ID_PATTERN.test(text)
}

export function writeId(view: DataView, offsetBytes: number, id: string): void {
  if (!isId(id)) throw new LvmfsError('ENGINE_USAGE', `malformed id "${id}"`)
  for (let i = 0; i < ID_BYTES; i++) {
    view.setUint8(offsetBytes + i, Number.parseInt(id.slice(i * 2, i * 2 + 2), 16))
  }
}

export function readId(view: DataView, offsetBytes: number): string {
  let out = ''
  for (let i = 0; i < ID_BYTES; i++) out += view.getUint8(offsetBytes + i).toString(16).padStart(2, '0')
  return out
}

export function writeU64(view: DataView, offsetBytes: number, value: number): void {
  view.setBigUint64(offsetBytes, BigInt(value), true)
}

export function readU64(view: DataView, offsetBytes: number, field: string): number {
  const value = view.getBigUint64(offsetBytes, true)
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(field, 'a value below 2^53', String(value))
  return Number(value)
}

export function writeMagic(bytes: Uint8Array, offsetBytes: number, magic: string): void {
  for (let i = 0; i < magic.length; i++) bytes[offsetBytes + i] = magic.charCodeAt(i)
}

export function hasMagic(bytes: Uint8Array, offsetBytes: number, magic: string): boolean {
  for (let i = 0; i < magic.length; i++) if (bytes[offsetBytes + i] !== magic.charCodeAt(i)) return false
  return true
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** What a decoder found wrong; `reason` lets the quorum code classify copies. */
export type CorruptReason = 'magic' | 'version' | 'checksum' | 'location' | 'torn' | 'field'

export function corrupt(field: string, expected: string, got: string,
  reason: CorruptReason = 'field'): LvmfsError {
  return new LvmfsError('ENGINE_CORRUPT', `bad ${field}`, {
    detail: `Expected ${expected}, got ${got}.`, context: { field, expected, got, reason },
  })
}

export function badVersion(what: string, got: number, supported: number): LvmfsError {
  return new LvmfsError('LVM_BADVERSION', `unsupported ${what} format version ${got}`, {
    detail: `This lvmfs reads format versions up to ${supported}.`,
    hint: 'Use a newer lvmfs.', context: { field: `${what}.formatVersion`, got, reason: 'version' },
  })
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment
}

/** Two u64s, big-endian: the lock value blocks of shared VGs (docs/shared-vg.md). */
export function encodeU64PairBe(first: number, second: number): Uint8Array {
  const bytes = new Uint8Array(16)
  const view = viewOf(bytes)
  view.setBigUint64(0, BigInt(first))
  view.setBigUint64(8, BigInt(second))
  return bytes
}

/** The pair encodeU64PairBe wrote; undefined for anything else (empty, zero-filled, foreign). */
export function decodeU64PairBe(bytes: Uint8Array | undefined): [number, number] | undefined {
  if (bytes?.length !== 16 || bytes.every((b) => b === 0)) return undefined
  const view = viewOf(bytes)
  return [Number(view.getBigUint64(0)), Number(view.getBigUint64(8))]
}
