/**
 * NbdDevice: a PV on an NBD export (`nbd://host[:port]/export`, `nbd+unix:///export?socket=PATH`),
 * through the native addon's libnbd connection (native/nbd-client.cc). It has no file descriptor
 * (fd -1); the native data path reaches the same connection through `dataToken`, so volume
 * bytes on it never pass through JavaScript either (docs/remote-pvs.md).
 *
 * Durability: `sync()` is NBD_CMD_FLUSH and `writeDurable` a write with NBD_CMD_FLAG_FUA, so a
 * read-write open is refused on an export that can do neither. `discard` is NBD_CMD_WRITE_ZEROES
 * (the server may punch the range), never TRIM, whose ranges may read back as anything.
 *
 * Failure: a request the server does not answer within the timeout fails with ETIMEDOUT, and
 * every later request on the device fails at once (the connection is dead); the PV layer counts
 * those errors and marks the PV MISSING, as for a local disk that disappeared, and a later
 * vary-on opens the URI again.
 */
import { resolve as resolvePath } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import { nativeAddon } from '../native/index.js'
import type { BlockDevice, OpenOptions } from './block-device.js'
import { checkRange, closedError, ioError } from './device-error.js'

/** Request failures that mean the connection is gone (native/nbd-client.cc fails every later
 * request of a dead connection with the same code), not a failed block. */
const CONNECTION_LOST = new Set(['ETIMEDOUT', 'ECONNRESET', 'ENOTCONN', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED'])

/** Default per-request timeout; LVMFS_NBD_TIMEOUT_MS or OpenOptions.remoteTimeoutMs override. */
export const DEFAULT_NBD_TIMEOUT_MS = 30_000
/** Largest single request sent: below every common server's limit (nbdkit, nbd-server, qemu-nbd
 * accept 32 MiB), and large transfers are split into requests in flight at once. */
const MAX_REQUEST_BYTES = 4 << 20

export interface ExportInfo {
  readonly sizeBytes: number
  readonly readOnly: boolean
  readonly canFlush: boolean
  readonly canFua: boolean
  readonly canTrim: boolean
  readonly canZero: boolean
  readonly minimumBlockBytes: number
  readonly maximumBlockBytes: number
}

interface NbdConnection {
  connect(): Promise<ExportInfo>
  pread(buffer: Uint8Array, offsetBytes: number): Promise<void>
  pwrite(buffer: Uint8Array, offsetBytes: number, fua: boolean): Promise<void>
  flush(): Promise<void>
  zero(offsetBytes: number, lengthBytes: number): Promise<void>
  close(): Promise<void>
  dataFd(): number
}

type NbdConnectionClass = new (uri: string, timeoutMs: number) => NbdConnection

/** True for the device names this module opens (the schemes libnbd takes that reach a server). */
export function isRemoteDevicePath(path: string): boolean {
  return /^nbds?(\+unix)?:\/\//.test(path)
}

/** Checks the URI's shape before any connection, so a typo is named as such. */
export function parseNbdUri(path: string): { transport: 'tcp' | 'unix', host?: string, socket?: string } {
  let url: URL
  try {
    url = new URL(path)
  } catch (cause) {
    throw invalidUri(path, 'it is not a URI', cause)
  }
  const scheme = url.protocol.replace(/:$/, '')
  if (scheme === 'nbd' || scheme === 'nbds') {
    if (url.hostname === '') throw invalidUri(path, 'nbd:// needs a host: nbd://HOST[:PORT]/EXPORT')
    return { transport: 'tcp', host: url.hostname }
  }
  if (scheme === 'nbd+unix' || scheme === 'nbds+unix') {
    const socket = url.searchParams.get('socket')
    if (socket === null || socket === '') {
      throw invalidUri(path, 'nbd+unix:// needs the socket: nbd+unix:///EXPORT?socket=PATH')
    }
    return { transport: 'unix', socket }
  }
  throw invalidUri(path, `scheme "${scheme}" is not nbd, nbds, nbd+unix or nbds+unix`)
}

function invalidUri(path: string, why: string, cause?: unknown): LvmfsError {
  return new LvmfsError('LVM_INV_DEVENT', `invalid NBD device "${path}": ${why}`, {
    context: { path, field: 'device' }, ...(cause === undefined ? {} : { cause }) })
}

export function nbdTimeoutMs(options: OpenOptions, env: NodeJS.ProcessEnv = process.env): number {
  if (options.remoteTimeoutMs !== undefined) return options.remoteTimeoutMs
  const text = env['LVMFS_NBD_TIMEOUT_MS']
  if (text === undefined || text === '') return DEFAULT_NBD_TIMEOUT_MS
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new LvmfsError('ENGINE_USAGE', `LVMFS_NBD_TIMEOUT_MS must be a positive integer of milliseconds, not "${text}"`,
      { context: { field: 'LVMFS_NBD_TIMEOUT_MS', value: text } })
  }
  return value
}

export async function openNbdDevice(path: string, options: OpenOptions = {}): Promise<BlockDevice> {
  parseNbdUri(path)
  const Connection = nativeAddon()['NbdConnection'] as NbdConnectionClass | undefined
  if (Connection === undefined) {
    throw new LvmfsError('ENGINE_NOT_SUPPORTED', `cannot open "${path}": lvmfs was built without libnbd`, {
      hint: 'Install libnbd-dev and rebuild the addon (npm run build).', context: { path } })
  }
  const connection = new Connection(path, nbdTimeoutMs(options))
  let info: ExportInfo
  try {
    info = await connection.connect()
  } catch (cause) {
    await connection.close().catch(() => undefined)
    const error = ioError('connect', path, 0, 0, cause)
    // libnbd's own words say which step failed (socket, handshake, export name).
    throw new LvmfsError('ENGINE_IO', `cannot connect to "${path}": ${(cause as Error).message}`,
      { context: error.context, cause })
  }
  const readOnly = options.readOnly === true
  const refuse = (why: string, errno: string): never => {
    void connection.close().catch(() => undefined)
    throw new LvmfsError('ENGINE_IO', `cannot open "${path}" read-write: ${why}`, { context: { path, errno } })
  }
  if (!readOnly && info.readOnly) refuse('the NBD export is read-only', 'EROFS')
  if (!readOnly && !info.canFlush && !info.canFua) {
    refuse('the NBD server can neither flush nor force unit access, so no write could be made durable', 'EOPNOTSUPP')
  }
  return new NbdDevice(path, connection, info, readOnly)
}

class NbdDevice implements BlockDevice {
  readonly kind = 'remote' as const
  readonly fd = -1
  readonly dataToken: number
  readonly sizeBytes: number
  readonly sectorBytes: number
  private readonly requestBytes: number
  private closed = false
  /** Set once the connection is lost (see BlockDevice.unreachable): it is never used again. */
  unreachable = false

  constructor(readonly path: string, private readonly connection: NbdConnection,
    private readonly info: ExportInfo, private readonly readOnly: boolean) {
    this.sizeBytes = info.sizeBytes
    this.dataToken = connection.dataFd()
    this.sectorBytes = Math.max(512, info.minimumBlockBytes)
    this.requestBytes = info.maximumBlockBytes > 0 ? Math.min(MAX_REQUEST_BYTES, info.maximumBlockBytes)
      : MAX_REQUEST_BYTES
  }

  async read(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    this.check(offsetBytes, buffer.length)
    await this.split('read', buffer, offsetBytes, (part, at) => this.connection.pread(part, at))
  }

  async write(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    this.checkWritable(offsetBytes, buffer.length)
    await this.split('write', buffer, offsetBytes, (part, at) => this.connection.pwrite(part, at, false))
  }

  async writeDurable(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    this.checkWritable(offsetBytes, buffer.length)
    if (!this.info.canFua) {
      await this.write(buffer, offsetBytes)
      return await this.sync()
    }
    await this.split('write', buffer, offsetBytes, (part, at) => this.connection.pwrite(part, at, true))
  }

  async sync(): Promise<void> {
    if (this.closed) throw closedError(this.path)
    if (this.readOnly) return
    // An export without FLUSH has only FUA (checked at open): its writes are made durable one
    // by one through writeDurable, and plain writes reach the server's stable storage on its terms.
    if (!this.info.canFlush) return
    try {
      await this.connection.flush()
    } catch (cause) {
      throw this.failure('flush', 0, 0, cause)
    }
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.checkWritable(offsetBytes, lengthBytes)
    if (!this.info.canZero) {
      const zeros = new Uint8Array(Math.min(lengthBytes, this.requestBytes))
      for (let done = 0; done < lengthBytes; done += zeros.length) {
        await this.write(zeros.subarray(0, Math.min(zeros.length, lengthBytes - done)), offsetBytes + done)
      }
      return
    }
    const parts: Array<Promise<void>> = []
    // WRITE_ZEROES carries no payload, so its length limit is the server's, not ours: stay
    // within 2 GiB per request, which every server takes.
    for (let done = 0; done < lengthBytes; done += 1 << 30) {
      const length = Math.min(1 << 30, lengthBytes - done)
      parts.push(this.connection.zero(offsetBytes + done, length))
    }
    const failed = (await Promise.allSettled(parts)).find((outcome): outcome is PromiseRejectedResult =>
      outcome.status === 'rejected')
    if (failed !== undefined) throw this.failure('zero', offsetBytes, lengthBytes, failed.reason)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.connection.close().catch(() => undefined)
  }

  private check(offsetBytes: number, lengthBytes: number): void {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, lengthBytes)
  }

  private checkWritable(offsetBytes: number, lengthBytes: number): void {
    this.check(offsetBytes, lengthBytes)
    if (this.readOnly) {
      throw new LvmfsError('ENGINE_IO', `"${this.path}" was opened read-only`, { context: { path: this.path, errno: 'EROFS' } })
    }
  }

  /** The error of a failed request; a connection-level cause marks the device unreachable. */
  private failure(op: string, offsetBytes: number, lengthBytes: number, cause: unknown): Error {
    const code = (cause as { code?: unknown } | null)?.code
    if (typeof code === 'string' && CONNECTION_LOST.has(code)) this.unreachable = true
    return ioError(op, this.path, offsetBytes, lengthBytes, cause)
  }

  private async split(op: 'read' | 'write', buffer: Uint8Array, offsetBytes: number,
    transfer: (part: Uint8Array, atBytes: number) => Promise<void>): Promise<void> {
    const parts: Array<Promise<void>> = []
    for (let done = 0; done < buffer.length; done += this.requestBytes) {
      parts.push(transfer(buffer.subarray(done, Math.min(buffer.length, done + this.requestBytes)), offsetBytes + done))
    }
    // Every part settles before the call does, so a failed part never leaves another still
    // using the caller's buffer.
    const outcomes = await Promise.allSettled(parts)
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
    if (failed !== undefined) throw this.failure(op, offsetBytes, buffer.length, failed.reason)
  }
}

/** A device name made independent of the working directory: local paths become absolute,
 * URIs stay as they are (path.resolve would turn `nbd://h/e` into `$PWD/nbd:/h/e`). */
export function absoluteDevicePath(path: string): string {
  return isRemoteDevicePath(path) ? path : resolvePath(path)
}
