/**
 * VgStatus helpers: conversion to and from the VGSA record (keyed by pvId), normalisation
 * against a descriptor (a crash between a descriptor commit and the status commit after it
 * must not leave stale bits on freed PPs or entries for departed PVs), and merging of forked
 * status copies (union: a stale bit is never lost).
 */
import { bitmapBytes, type VgsaRecord } from '../format/index.js'
import { allocationMaps } from './descriptor.js'
import type { StaleChange, VgDescriptor, VgStatus } from './model.js'

export function emptyStatus(d: VgDescriptor, seq = 0): VgStatus {
  return { seq, missing: d.pvs.map(() => false), stale: d.pvs.map((pv) => new Uint8Array(bitmapBytes(pv.ppCount))),
    dirtyLvs: [] }
}

export function statusFromRecords(records: readonly VgsaRecord[], d: VgDescriptor): VgStatus {
  const status = emptyStatus(d, Math.max(0, ...records.map((r) => r.seq)))
  const missing = [...status.missing]
  const dirty = new Set<number>()
  for (const record of records) {
    for (const entry of record.pvs) {
      const pvIndex = d.pvs.findIndex((pv) => pv.pvId === entry.pvId)
      if (pvIndex < 0) continue
      missing[pvIndex] = missing[pvIndex]! || entry.missing
      const target = status.stale[pvIndex]!
      for (let i = 0; i < Math.min(target.length, entry.stale.length); i++) target[i]! |= entry.stale[i]!
    }
    for (const lvId of record.dirtyLvs) dirty.add(lvId)
  }
  return normalizeStatus({ ...status, missing, dirtyLvs: [...dirty] }, d)
}

export function statusToRecord(status: VgStatus, d: VgDescriptor): VgsaRecord {
  return { vgId: d.vgId, seq: status.seq, dirtyLvs: status.dirtyLvs,
    pvs: d.pvs.map((pv, i) => ({ pvId: pv.pvId, missing: status.missing[i]!, ppCount: pv.ppCount,
      stale: status.stale[i]! })) }
}

/** Clears stale bits of unallocated PPs, drops dirty flags of LVs that no longer exist. */
export function normalizeStatus(status: VgStatus, d: VgDescriptor): VgStatus {
  const maps = allocationMaps(d)
  const stale = status.stale.map((bits, pvIndex) => {
    const out = new Uint8Array(bits)
    const used = maps[pvIndex]!
    for (let pp = 0; pp < used.length; pp++) if (used[pp] === 0) out[pp >> 3]! &= ~(1 << (pp & 7))
    return out
  })
  const lvIds = new Set(d.lvs.map((lv) => lv.lvId))
  const dirtyLvs = [...new Set(status.dirtyLvs)].filter((id) => lvIds.has(id)).sort((a, b) => a - b)
  return { seq: status.seq, missing: [...status.missing], stale, dirtyLvs }
}

export function statusEquals(a: VgStatus, b: VgStatus): boolean {
  return a.missing.length === b.missing.length && a.missing.every((m, i) => m === b.missing[i]) &&
    a.stale.every((bits, i) => Buffer.compare(bits, b.stale[i]!) === 0) &&
    a.dirtyLvs.length === b.dirtyLvs.length && a.dirtyLvs.every((id, i) => id === b.dirtyLvs[i])
}

export function isStaleBit(status: VgStatus, pvIndex: number, pp: number): boolean {
  const bits = status.stale[pvIndex]
  return bits !== undefined && ((bits[pp >> 3] ?? 0) & (1 << (pp & 7))) !== 0
}

export function withStaleBits(status: VgStatus, changes: readonly StaleChange[], value: boolean): VgStatus {
  const stale = status.stale.map((bits) => new Uint8Array(bits))
  for (const { pvIndex, pp } of changes) {
    const bits = stale[pvIndex]!
    if (value) bits[pp >> 3]! |= 1 << (pp & 7)
    else bits[pp >> 3]! &= ~(1 << (pp & 7))
  }
  return { ...status, stale }
}
