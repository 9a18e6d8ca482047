/**
 * FaultyDevice: wraps any BlockDevice and injects the faults of the lvmfs fault model.
 *
 * Fault model (each off by default, all deterministic so failures replay):
 *  - read/write EIO on byte ranges (latent sector errors, bad regions);
 *  - write EIO after N more successful writes (a disk that dies mid-commit);
 *  - `disappear()`: every call fails with ENXIO until `reappear()` (a pulled disk);
 *  - torn write: the next write lands only on some of its sectors (the rest keep old bytes),
 *    then fails with EIO;
 *  - bit flips applied to data returned by reads (corruption on the way back);
 *  - latency added before each operation;
 *  - a shared CrashController that counts writes across several devices and "crashes" the
 *    whole machine at write number K with that write dropped, torn or completed: nothing
 *    after it reaches any device (power loss at a write boundary; our devices below have no
 *    volatile cache, so every completed write is on the medium).
 */
import type { BlockDevice } from './block-device.js'
import { ioError } from './device-error.js'

export type CrashMode = 'dropped' | 'torn' | 'complete'

export class CrashController {
  writes = 0
  crashed = false
  /** Crash when the write counter reaches `atWrite` (1-based), applying it per `mode`. */
  constructor(public atWrite = Number.POSITIVE_INFINITY, public mode: CrashMode = 'dropped') {}
}

function eio(op: string, path: string, offsetBytes: number, lengthBytes: number, code = 'EIO'): Error {
  return ioError(op, path, offsetBytes, lengthBytes,
    Object.assign(new Error(`injected ${code}`), { code }))
}

function overlaps(ranges: ReadonlyArray<readonly [number, number]>, start: number, end: number): boolean {
  return ranges.some(([a, b]) => start < b && a < end)
}

export class FaultyDevice implements BlockDevice {
  readErrorRanges: Array<readonly [number, number]> = []
  writeErrorRanges: Array<readonly [number, number]> = []
  latencyMs = 0
  /** Bit flips applied to reads: byte offset → xor mask. */
  readonly readFlips = new Map<number, number>()
  private writesBeforeFailure = Number.POSITIVE_INFINITY
  private gone = false
  private unanswered = false
  private tearNext: number | undefined
  /** Every write that reached the inner device: offset and length (a tiny write log). */
  readonly writeLog: Array<{ offsetBytes: number; lengthBytes: number }> = []

  constructor(readonly inner: BlockDevice, readonly crash?: CrashController) {}

  get path(): string { return this.inner.path }
  get kind(): BlockDevice['kind'] { return this.inner.kind }
  get unreachable(): boolean { return this.unanswered || this.inner.unreachable === true }
  get sizeBytes(): number { return this.inner.sizeBytes }
  get sectorBytes(): number { return this.inner.sectorBytes }
  get fd(): number { return this.inner.fd }
  get dataToken(): number | undefined { return this.inner.dataToken }

  /** True when a read now reaches the inner device unchanged (no read fault, flip, latency,
   * disappearance or crash), so a caller may read the inner device's fd directly (the native
   * block hashes of checksum resync); false sends such readers through `read`. */
  readsPassThrough(): boolean {
    return !this.gone && this.crash?.crashed !== true && this.readErrorRanges.length === 0 &&
      this.readFlips.size === 0 && this.latencyMs === 0
  }

  /** True when a write now reaches the inner device unchanged (no write fault, countdown, torn
   * write, latency, disappearance or crash controller counting writes), so a caller may write
   * the inner device's fd directly (the native range copier of resync; such writes are not in
   * `writeLog`); false sends such writers through `write`. */
  writesPassThrough(): boolean {
    return !this.gone && this.crash === undefined && this.writeErrorRanges.length === 0 &&
      this.writesBeforeFailure === Number.POSITIVE_INFINITY && this.tearNext === undefined && this.latencyMs === 0
  }

  failWritesAfter(count: number): void { this.writesBeforeFailure = count }
  disappear(): void { this.gone = true }
  /** As disappear, and the device says it stopped answering (a remote PV whose connection died). */
  stopAnswering(): void {
    this.gone = true
    this.unanswered = true
  }
  reappear(): void {
    this.gone = false
    this.unanswered = false
  }
  /** The next write lands only on its first `sectors` sectors, then fails with EIO. */
  tearNextWrite(sectors: number): void { this.tearNext = sectors }

  private async before(op: string, offsetBytes: number, lengthBytes: number): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    if (this.gone) throw eio(op, this.path, offsetBytes, lengthBytes, 'ENXIO')
    if (this.crash?.crashed === true) throw eio(op, this.path, offsetBytes, lengthBytes)
  }

  async read(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    await this.before('read', offsetBytes, buffer.length)
    if (overlaps(this.readErrorRanges, offsetBytes, offsetBytes + buffer.length)) {
      throw eio('read', this.path, offsetBytes, buffer.length)
    }
    await this.inner.read(buffer, offsetBytes)
    for (const [at, mask] of this.readFlips) {
      if (at >= offsetBytes && at < offsetBytes + buffer.length) buffer[at - offsetBytes]! ^= mask
    }
  }

  async write(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    await this.writeWith(buffer, offsetBytes, false)
  }

  /** Same faults as write; the bytes reach the inner device with its durable write. */
  async writeDurable(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    await this.writeWith(buffer, offsetBytes, true)
  }

  private async writeWith(buffer: Uint8Array, offsetBytes: number, durable: boolean): Promise<void> {
    await this.before('write', offsetBytes, buffer.length)
    if (overlaps(this.writeErrorRanges, offsetBytes, offsetBytes + buffer.length) ||
        this.writesBeforeFailure <= 0) {
      throw eio('write', this.path, offsetBytes, buffer.length)
    }
    this.writesBeforeFailure--
    if (this.crash !== undefined) {
      this.crash.writes++
      if (this.crash.writes >= this.crash.atWrite) {
        this.crash.crashed = true
        if (this.crash.mode === 'complete') await this.apply(buffer, offsetBytes)
        if (this.crash.mode === 'torn') await this.applyTorn(buffer, offsetBytes, 1)
        throw eio('write', this.path, offsetBytes, buffer.length)
      }
    }
    if (this.tearNext !== undefined) {
      const sectors = this.tearNext
      this.tearNext = undefined
      await this.applyTorn(buffer, offsetBytes, sectors)
      throw eio('write', this.path, offsetBytes, buffer.length)
    }
    await this.apply(buffer, offsetBytes, durable)
  }

  private async apply(buffer: Uint8Array, offsetBytes: number, durable = false): Promise<void> {
    if (!durable) await this.inner.write(buffer, offsetBytes)
    else if (this.inner.writeDurable !== undefined) await this.inner.writeDurable(buffer, offsetBytes)
    else {
      await this.inner.write(buffer, offsetBytes)
      await this.inner.sync()
    }
    this.writeLog.push({ offsetBytes, lengthBytes: buffer.length })
  }

  /** Writes the first `sectors` sectors only; with one sector or more the write is visibly torn
   * when the buffer spans more than one sector. */
  private async applyTorn(buffer: Uint8Array, offsetBytes: number, sectors: number): Promise<void> {
    const keep = Math.min(buffer.length, Math.max(0, sectors) * this.sectorBytes)
    if (keep > 0) await this.apply(buffer.subarray(0, keep), offsetBytes)
  }

  async sync(): Promise<void> {
    await this.before('fdatasync', 0, 0)
    await this.inner.sync()
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.before('discard', offsetBytes, lengthBytes)
    await this.inner.discard(offsetBytes, lengthBytes)
  }

  async close(): Promise<void> {
    await this.inner.close()
  }
}
