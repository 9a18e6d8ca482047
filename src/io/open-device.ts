import type { BlockDevice, OpenOptions } from './block-device.js'
import { openFileDevice } from './file-device.js'
import { isRemoteDevicePath, openNbdDevice } from './nbd-device.js'

/** Opens any PV device name: an nbd:// or nbd+unix:// URI, else a file or block device path. */
export function openDevice(path: string, options: OpenOptions = {}): Promise<BlockDevice> {
  return isRemoteDevicePath(path) ? openNbdDevice(path, options) : openFileDevice(path, options)
}
