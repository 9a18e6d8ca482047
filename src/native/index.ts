export { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, nativeAddon } from './addon.js'
export type { LoopStatus, NativeAddon } from './addon.js'
export { MAX_COPIES, THIN_ENTRY_UNKNOWN, THIN_ENTRY_UNMAPPED, thinEntry } from './volume-map.js'
export type { CopyTarget, ReadPolicy, ThinVolumeSpec, VolumeExtent, VolumeMap, WriteSchedule } from './volume-map.js'
