export type { BlockDevice, OpenOptions } from './block-device.js'
export { openFileDevice, statDeviceEntry, type DeviceEntryKind } from './file-device.js'
export { openDevice } from './open-device.js'
export { absoluteDevicePath, isRemoteDevicePath, parseNbdUri, DEFAULT_NBD_TIMEOUT_MS } from './nbd-device.js'
export { MemoryDevice } from './memory-device.js'
export { FaultyDevice, CrashController, type CrashMode } from './faulty-device.js'
export { resolveDeviceList, DEVICES_FILE } from './device-list.js'
export { lockDirectory } from './device-lock.js'
export { ioError } from './device-error.js'
export {
  attachLoop, boundLoopNumbers, isBound, loopHolders, loopPath, loopStatus, openBoundLoop, releaseLoop, resizeLoop,
  type LoopDevice, type LoopRange,
} from './loop-devices.js'
