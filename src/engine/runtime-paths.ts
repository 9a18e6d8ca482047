/** Where a mounted VG's control socket, pid file and log live (overridable for tests). */
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
