/** Where a mounted VG's control socket, pid file and log live (overridable for tests). */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

export function runDir(): string {
  return process.env['LVMFS_RUN_DIR'] ?? '/run/lvmfs'
}

export function logDir(): string {
  return process.env['LVMFS_LOG_DIR'] ?? '/var/log/lvmfs'
}

export function socketPath(vgName: string): string {
  return join(runDir(), `${vgName}.sock`)
}

export function pidPath(vgName: string): string {
  return join(runDir(), `${vgName}.pid`)
}

export function logPath(vgName: string): string {
  return join(logDir(), `${vgName}.log`)
}

/** A shared-VG daemon's name for its socket and pid file: several serve one VG at once. */
export function instanceName(vgName: string, pid: number): string {
  return `${vgName}@${pid}`
}

/** Instance names of shared-VG daemons of `vgName` with a socket here (live or stale). */
export function sharedInstancesOf(vgName: string): string[] {
  try {
    return readdirSync(runDir()).filter((name) => name.startsWith(`${vgName}@`) && name.endsWith('.sock'))
      .map((name) => name.slice(0, -'.sock'.length))
  } catch {
    return []
  }
}

/** Where the block devices of linear LVs get their names: DEV_DIR/VG/LV (docs/block-devices.md). */
export function devDir(): string {
  return process.env['LVMFS_DEV_DIR'] ?? '/dev/lvmfs'
}
