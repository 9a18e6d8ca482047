import { LvmfsError } from '../errors/index.js'

/** Wraps a system error of one device operation into a typed ENGINE_IO naming the device. */
export function ioError(op: string, path: string, offsetBytes: number, lengthBytes: number,
  cause: unknown): LvmfsError {
  const sys = (cause as { code?: unknown } | null)?.code
  return new LvmfsError('ENGINE_IO', `${op} failed on "${path}"`, {
    detail: `${op} of ${lengthBytes} bytes at offset ${offsetBytes}` +
      (typeof sys === 'string' ? ` failed with ${sys}.` : ' failed.'),
    context: { path, op, offsetBytes, lengthBytes, errno: typeof sys === 'string' ? sys : 'EIO' },
    cause,
  })
}

export function checkRange(path: string, sizeBytes: number, offsetBytes: number,
  lengthBytes: number): void {
  if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes + lengthBytes > sizeBytes) {
    throw new LvmfsError('ENGINE_IO', `access beyond the end of "${path}"`, {
      detail: `Range [${offsetBytes}, ${offsetBytes + lengthBytes}) exceeds the device size ` +
        `${sizeBytes}.`,
      context: { path, offsetBytes, lengthBytes, sizeBytes, errno: 'EIO' },
    })
  }
}

export function closedError(path: string): LvmfsError {
  return new LvmfsError('ENGINE_IO', `device "${path}" is closed`, {
    context: { path, errno: 'EBADF' },
  })
}
