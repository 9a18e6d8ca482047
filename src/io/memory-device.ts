import type { BlockDevice } from './block-device.js'
import { checkRange, closedError } from './device-error.js'

/**
 * A RAM-backed device for tests. Writes are immediately "durable" (there is no page cache to
 * lose); crash behaviour is modelled by FaultyDevice on top. `data` is exposed so tests can
 * corrupt bytes and hash the content.
 */
export class MemoryDevice implements BlockDevice {
  readonly kind = 'memory' as const
  readonly fd = -1
  readonly sizeBytes: number
  readonly data: Uint8Array
  private closed = false

  constructor(readonly path: string, sizeBytes: number, readonly sectorBytes = 512) {
    this.sizeBytes = sizeBytes
    this.data = new Uint8Array(sizeBytes)
  }

  /** A second handle on the same bytes (like reopening a file after a crash). */
  reopen(): MemoryDevice {
    const copy = Object.create(MemoryDevice.prototype) as MemoryDevice
    Object.assign(copy, { path: this.path, sizeBytes: this.sizeBytes, data: this.data,
      sectorBytes: this.sectorBytes, kind: 'memory', fd: -1, closed: false })
    return copy
  }

  async read(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, buffer.length)
    buffer.set(this.data.subarray(offsetBytes, offsetBytes + buffer.length))
  }

  async write(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, buffer.length)
    this.data.set(buffer, offsetBytes)
  }

  async sync(): Promise<void> {
    if (this.closed) throw closedError(this.path)
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, lengthBytes)
    this.data.fill(0, offsetBytes, offsetBytes + lengthBytes)
  }

  async close(): Promise<void> {
    this.closed = true
  }
}
