/**
 * Shared plumbing of the verbs that talk to a mounted VG's daemon: finding it by VG name or
 * mount point, and calling its control socket.
 */
import { readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import { callControl, runDir, sharedInstancesOf, socketPath, type VgStatusReport } from '../engine/index.js'

/** VG names with a control socket in the runtime directory (live or stale). */
export function socketVgNames(): string[] {
  try {
    return readdirSync(runDir()).filter((name) => name.endsWith('.sock')).map((name) => name.slice(0, -5))
  } catch {
    return []
  }
}

export async function statusOfVg(vgName: string): Promise<VgStatusReport> {
  return await callControl(socketPath(vgName), 'status') as VgStatusReport
}

/** The VG served by a daemon, named either by VG or by mount point. */
export async function findMounted(target: string): Promise<VgStatusReport> {
  const names = socketVgNames()
  if (names.includes(target)) return await statusOfVg(target)
  // A shared VG named by VG: the first live daemon of it (lvmfs status lists them all).
  for (const instance of sharedInstancesOf(target)) {
    try {
      return await statusOfVg(instance)
    } catch { /* a stale socket of a dead daemon */ }
  }
  const absolute = resolve(target)
  for (const name of names) {
    try {
      const status = await statusOfVg(name)
      if (status.mountpoint === absolute) return status
    } catch { /* a stale socket of a dead daemon */ }
  }
  throw new LvmfsError('ENGINE_NOT_MOUNTED', `no lvmfs daemon serves "${target}"`, {
    hint: 'lvmfs status lists mounted volume groups.' })
}

/** True when a live daemon serves `vgName` (its control socket answers). */
export async function isServed(vgName: string): Promise<boolean> {
  try {
    await statusOfVg(vgName)
    return true
  } catch {
    return false
  }
}

/**
 * The control socket a command on `vgName` goes to: the VG's daemon, else (shared VG) the
 * shared daemon serving `lvName`, else any live shared daemon of the VG; undefined if none.
 */
export async function daemonSocketFor(vgName: string, lvName: string | undefined): Promise<string | undefined> {
  if (await isServed(vgName)) return socketPath(vgName)
  let anyLive: string | undefined
  for (const instance of sharedInstancesOf(vgName)) {
    try {
      const status = await statusOfVg(instance)
      if (lvName !== undefined && status.shared?.lvs.some((lv) => lv.name === lvName) === true) {
        return socketPath(instance)
      }
      anyLive ??= socketPath(instance)
    } catch { /* a stale socket of a dead daemon */ }
  }
  return anyLive
}
