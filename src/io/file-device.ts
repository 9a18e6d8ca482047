/**
 * FileDevice: a PV on a regular file, a loop device or a real block device.
 *
 * Size and sector size come from fstat for files and from BLKGETSIZE64/BLKSSZGET (native
 * addon) for block devices. Discard punches a hole (files) or issues BLKDISCARD (devices);
 * without the addon it falls back to writing zeros. Exclusive open: O_EXCL for block devices,
 * a lock file for regular files (device-lock.ts).
 */
import { constants, promises as fsp, type Stats } from 'node:fs'
import { LvmfsError } from '../errors/index.js'
import { nativeAddon, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../native/index.js'
import type { BlockDevice, OpenOptions } from './block-device.js'
import { checkRange, closedError, ioError } from './device-error.js'
import { claimFile, type DeviceClaim } from './device-lock.js'
import { isRemoteDevicePath, parseNbdUri } from './nbd-device.js'

export type DeviceEntryKind = 'file' | 'block' | 'remote' | 'absent' | 'other' | 'invalid'

/** Classifies a device name without opening it: the basis of LVM_NOTCHARDEV/LVM_INV_DEVENT. */
export async function statDeviceEntry(path: string): Promise<{ kind: DeviceEntryKind; error?: unknown }> {
  if (path === '' || path.includes('\0')) return { kind: 'invalid' }
  if (isRemoteDevicePath(path)) {
    try {
      parseNbdUri(path)
      return { kind: 'remote' }
    } catch (error) {
      return { kind: 'invalid', error }
    }
  }
  let stats: Stats
  try {
    stats = await fsp.stat(path)
  } catch (error) {
    const code = (error as { code?: string }).code
    return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'absent', error } : { kind: 'invalid', error }
  }
  if (stats.isFile()) return { kind: 'file' }
  if (stats.isBlockDevice()) return { kind: 'block' }
  return { kind: 'other' }
}

export async function openFileDevice(path: string, options: OpenOptions = {}): Promise<BlockDevice> {
  const entry = await statDeviceEntry(path)
  if (entry.kind === 'other') {
    throw new LvmfsError('LVM_NOTCHARDEV', `"${path}" is not a block device or regular file`, {
      context: { path },
    })
  }
  if (entry.kind === 'invalid') {
    throw new LvmfsError('LVM_INV_DEVENT', `cannot examine device "${path}"`, {
      context: { path }, cause: entry.error,
    })
  }
  if (entry.kind === 'remote') {
    throw new LvmfsError('LVM_INV_DEVENT', `"${path}" is a remote device; open it with openDevice`, { context: { path } })
  }
  if (entry.kind === 'absent') {
    throw new LvmfsError('ENGINE_NOT_FOUND', `device "${path}" does not exist`, {
      context: { path, errno: 'ENOENT' }, cause: entry.error,
    })
  }
  const isBlock = entry.kind === 'block'
  let flags = options.readOnly === true ? constants.O_RDONLY : constants.O_RDWR
  if (isBlock && options.exclusive === true) flags |= constants.O_EXCL
  if (options.direct === true) flags |= constants.O_DIRECT
  let handle: fsp.FileHandle
  try {
    handle = await fsp.open(path, flags)
  } catch (cause) {
    const code = (cause as { code?: string }).code
    if (code === 'EBUSY') {
      throw new LvmfsError('ENGINE_BUSY', `"${path}" is in use (exclusive open refused)`, {
        context: { path }, cause,
      })
    }
    throw ioError('open', path, 0, 0, cause)
  }
  try {
    const stats = await handle.stat()
    let claim: DeviceClaim | undefined
    if (!isBlock && options.exclusive === true) claim = claimFile(path, stats.dev, stats.ino)
    const sizeBytes = isBlock ? Number(nativeAddon().blockDeviceSizeBytes(handle.fd)) : stats.size
    const sectorBytes = isBlock ? nativeAddon().blockDeviceSectorBytes(handle.fd) : 512
    return new FileDevice(path, handle, isBlock ? 'block' : 'file', sizeBytes, sectorBytes, claim)
  } catch (error) {
    await handle.close()
    throw error
  }
}

class FileDevice implements BlockDevice {
  private closed = false
  private dsyncHandle: Promise<fsp.FileHandle> | undefined

  constructor(readonly path: string, private readonly handle: fsp.FileHandle,
    readonly kind: 'file' | 'block', readonly sizeBytes: number, readonly sectorBytes: number,
    private readonly claim: DeviceClaim | undefined) {}

  get fd(): number {
    return this.handle.fd
  }

  async read(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, buffer.length)
    let done = 0
    while (done < buffer.length) {
      let bytesRead: number
      try {
        ({ bytesRead } = await this.handle.read(buffer, done, buffer.length - done, offsetBytes + done))
      } catch (cause) {
        throw ioError('read', this.path, offsetBytes, buffer.length, cause)
      }
      if (bytesRead === 0) {
        throw ioError('read', this.path, offsetBytes, buffer.length,
          Object.assign(new Error('short read'), { code: 'EIO' }))
      }
      done += bytesRead
    }
  }

  async write(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, buffer.length)
    let done = 0
    while (done < buffer.length) {
      try {
        const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done,
          offsetBytes + done)
        done += bytesWritten
      } catch (cause) {
        throw ioError('write', this.path, offsetBytes, buffer.length, cause)
      }
    }
  }

  async sync(): Promise<void> {
    if (this.closed) throw closedError(this.path)
    try {
      await this.handle.datasync()
    } catch (cause) {
      throw ioError('fdatasync', this.path, 0, 0, cause)
    }
  }

  async writeDurable(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, buffer.length)
    try {
      // A second, O_DSYNC descriptor of the same file: each write returns once its own range
      // is durable, unlike fdatasync, which also flushes every other dirty page of the file.
      this.dsyncHandle ??= fsp.open(this.path, constants.O_RDWR | constants.O_DSYNC)
      const handle = await this.dsyncHandle
      let done = 0
      while (done < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, done, buffer.length - done, offsetBytes + done)
        done += bytesWritten
      }
    } catch (cause) {
      throw ioError('write', this.path, offsetBytes, buffer.length, cause)
    }
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    if (this.closed) throw closedError(this.path)
    checkRange(this.path, this.sizeBytes, offsetBytes, lengthBytes)
    try {
      const addon = nativeAddon()
      if (this.kind === 'block') addon.blockDiscard(this.fd, offsetBytes, lengthBytes)
      else addon.fallocate(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offsetBytes, lengthBytes)
    } catch {
      // No addon or no discard support: zeroing gives the same read-back contract.
      const zeros = new Uint8Array(Math.min(lengthBytes, 1 << 20))
      for (let done = 0; done < lengthBytes; done += zeros.length) {
        const chunk = Math.min(zeros.length, lengthBytes - done)
        await this.write(zeros.subarray(0, chunk), offsetBytes + done)
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      const dsync = this.dsyncHandle
      this.dsyncHandle = undefined
      if (dsync !== undefined) await (await dsync.catch(() => undefined))?.close()
      await this.handle.close()
    } finally {
      this.claim?.release()
    }
  }
}
