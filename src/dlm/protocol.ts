/**
 * Broker wire protocol (docs/dlm.md "Wire protocol"): every message is a frame of a 4-byte
 * big-endian length followed by that many bytes of UTF-8 JSON. Requests carry an `id` that the
 * reply repeats; events have no id. Value blocks travel as base64 strings. Frames may be sent
 * back to back without waiting (pipelining); replies come in request order per connection.
 */
import { LvmfsError } from '../errors/index.js'
import type { Grant } from './types.js'

export const FRAME_BYTES_MAX = 1024 * 1024
const HEADER_BYTES = 4

export interface RequestMessage {
  readonly id: number
  readonly op: string
  readonly args: unknown
}

export type ReplyMessage =
  | { readonly id: number, readonly ok: true, readonly result: unknown }
  | { readonly id: number, readonly ok: false, readonly error: WireError }
  | { readonly event: unknown }

export interface WireError {
  readonly code: string
  readonly message: string
  readonly detail?: string
  readonly hint?: string
}

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8')
  if (body.length > FRAME_BYTES_MAX) {
    throw new LvmfsError('ENGINE_PROTOCOL', `lock protocol frame too large: ${body.length} bytes`)
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, HEADER_BYTES)
  return frame
}

/** Splits a byte stream into decoded JSON frames; throws ENGINE_PROTOCOL on a malformed stream. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): unknown[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const messages: unknown[] = []
    let offsetBytes = 0
    while (this.pending.length - offsetBytes >= HEADER_BYTES) {
      const lengthBytes = this.pending.readUInt32BE(offsetBytes)
      if (lengthBytes > FRAME_BYTES_MAX) {
        throw new LvmfsError('ENGINE_PROTOCOL', 'lock protocol frame too large',
          { detail: `Expected at most ${FRAME_BYTES_MAX} bytes, got a header saying ${lengthBytes}.` })
      }
      if (this.pending.length - offsetBytes < HEADER_BYTES + lengthBytes) break
      const start = offsetBytes + HEADER_BYTES
      const text = this.pending.toString('utf8', start, start + lengthBytes)
      try {
        messages.push(JSON.parse(text))
      } catch (cause) {
        throw new LvmfsError('ENGINE_PROTOCOL', 'lock protocol frame is not JSON', { cause })
      }
      offsetBytes = start + lengthBytes
    }
    this.pending = this.pending.subarray(offsetBytes)
    return messages
  }
}

export function encodeValueBlock(valueBlock: Uint8Array | undefined): string | undefined {
  return valueBlock === undefined ? undefined : Buffer.from(valueBlock).toString('base64')
}

export function decodeValueBlock(text: unknown): Uint8Array | undefined {
  if (text === undefined || text === null) return undefined
  if (typeof text !== 'string') {
    throw new LvmfsError('DLM_EFAULT', 'value block must be a base64 string')
  }
  return new Uint8Array(Buffer.from(text, 'base64'))
}

export function wireGrant(grant: Grant): Record<string, unknown> {
  return { ...grant, valueBlock: encodeValueBlock(grant.valueBlock) }
}
