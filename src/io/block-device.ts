/**
 * One interface over everything a PV can live on: regular files, loop devices, real block
 * devices, NBD exports, RAM (tests) and the fault-injecting wrapper (tests).
 *
 * Contract:
 *  - `read` fills the whole buffer or throws (a short read past the end is an error, never a
 *    silent zero fill); `write` writes the whole buffer or throws.
 *  - A write is durable only after `sync()` resolves (fdatasync on files and devices).
 *  - Errors are typed: ENGINE_IO with `context.path`, `offsetBytes`, `lengthBytes`, and the
 *    system error as `cause`.
 *  - After `close()` every call throws; `close()` twice is harmless.
 */
export interface BlockDevice {
  /** The path it was opened by (display and diagnostics). */
  readonly path: string
  /** 'file' for regular files, 'block' for block devices (loop or real), 'remote' for NBD
   * exports (nbd-device.ts), 'memory' in tests. */
  readonly kind: 'file' | 'block' | 'remote' | 'memory'
  readonly sizeBytes: number
  /** Logical sector size: the unit in which torn writes can happen and O_DIRECT aligns. */
  readonly sectorBytes: number
  /** The OS file descriptor, for the native data path; -1 when there is none (memory, remote). */
  readonly fd: number
  /** A remote device's token fd: what volume maps give the native data path for its copies
   * (native/remote-target.h). Not an fd for I/O: read and write fail on it with ESPIPE. */
  readonly dataToken?: number
  /**
   * True once the device stopped answering as a whole (a remote PV whose connection timed out or
   * was reset), as opposed to failing one request: its PV is gone, not a bad block, so the mirror
   * layer marks it MISSING at once, also when it held the last fresh copy.
   */
  readonly unreachable?: boolean
  read(buffer: Uint8Array, offsetBytes: number): Promise<void>
  write(buffer: Uint8Array, offsetBytes: number): Promise<void>
  /** Makes every completed write durable (fdatasync). */
  sync(): Promise<void>
  /** Optional: writes the buffer and makes only this range durable before resolving (O_DSYNC),
   * without flushing other dirty data of the device. Used for small log records (the MWC
   * log); callers fall back to write + sync when it is absent. */
  writeDurable?(buffer: Uint8Array, offsetBytes: number): Promise<void>
  /** Deallocates a range (punch hole / BLKDISCARD); reads of it then return zeros. */
  discard(offsetBytes: number, lengthBytes: number): Promise<void>
  close(): Promise<void>
}

export interface OpenOptions {
  /** Open read-only (for scans such as `pvs`/`vgs`); writes throw. */
  readonly readOnly?: boolean
  /** Take the exclusive claim (O_EXCL on block devices, a lock file for regular files). */
  readonly exclusive?: boolean
  /** O_DIRECT (buffers must then be sector aligned; use nativeAddon().alignedBuffer). */
  readonly direct?: boolean
  /** Remote devices: how long one request may go unanswered before the device fails. */
  readonly remoteTimeoutMs?: number
}
