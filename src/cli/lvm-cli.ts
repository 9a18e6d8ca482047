/**
 * Shared plumbing of the LVM verbs: which devices to scan, opening a VG for a change (vary-on,
 * run, vary-off), rendering tables, and turning vary-on results into typed errors.
 *
 * Every verb validates its arguments before touching a device, and mutations go through the
 * library's majority commits, so a refused command leaves every PV byte-identical.
 */
import type { Command } from 'commander'
import { LvmfsError } from '../errors/index.js'
import { resolveDeviceList } from '../io/index.js'
import {
  FileDescriptorBackup, resolveBackupDir, scanDevices, varyOnVg, type VaryOnFlags, type VaryOnResult, type VolumeGroup,
} from '../lvm/index.js'
import { onlineVg, stderr, stdout } from './io-context.js'
import { parseSizeBytes } from './options.js'

export interface DeviceOptions {
  readonly devices?: string
  readonly json?: boolean
  readonly backupDir?: string
}

export function addDeviceOptions(command: Command): Command {
  return command
    .option('--devices <paths>', 'comma-separated devices to scan (default $LVMFS_DEVICES, then /etc/lvmfs/devices)')
    .option('--json', 'print JSON')
    .option('--backup-dir <dir>', 'descriptor backups (default $LVMFS_BACKUP_DIR, then /etc/lvmfs/backup)')
}

/** The backup directory of this command: every descriptor it commits lands there; a failed
 * backup is a warning, never a failed command. */
export function cliBackup(options: DeviceOptions): FileDescriptorBackup {
  return new FileDescriptorBackup(resolveBackupDir(options.backupDir),
    (message) => stderr().write(`lvmfs: warning: ${message}\n`))
}

/** Verbs LVM2 refuses on an active VG run only where no daemon serves it. */
export function refuseMounted(vgName: string, verb: string): void {
  if (onlineVg(vgName) === undefined) return
  throw new LvmfsError('ENGINE_BUSY', `volume group "${vgName}" is mounted: ${verb} needs it unmounted`, {
    hint: `Unmount it (lvmfs umount), then run ${verb} again.`, context: { vg: vgName } })
}

export function deviceList(options: DeviceOptions): string[] {
  return resolveDeviceList(options.devices)
}

/** Same as deviceList, plus explicitly named devices (they are always scanned). */
export function deviceListWith(options: DeviceOptions, extra: readonly string[]): string[] {
  let base: string[] = []
  try {
    base = deviceList(options)
  } catch (error) {
    if (extra.length === 0) throw error
  }
  return [...new Set([...base, ...extra])]
}

export async function requireVgExists(vgName: string, devices: readonly string[]): Promise<void> {
  const { vgs } = await scanDevices(devices)
  if (!vgs.some((vg) => vg.name === vgName)) {
    throw new LvmfsError('ENGINE_NOT_FOUND', `volume group "${vgName}" not found`, {
      detail: `Scanned ${devices.length} device(s): ${devices.join(', ') || '(none)'}.`,
      hint: 'Check --devices / LVMFS_DEVICES.', context: { vg: vgName } })
  }
}

export function errorOf(result: VaryOnResult): LvmfsError {
  return result.error ?? new LvmfsError(result.rc as Exclude<VaryOnResult['rc'], 'LVM_SUCCESS' | 'LVM_CHKVVGOUT'>,
    'vary-on failed')
}

/** Varies the VG on (quorum needed; missing PVs allowed), runs `fn`, varies it off. */
export async function withVg<T>(vgName: string, options: DeviceOptions,
  fn: (vg: VolumeGroup) => Promise<T>): Promise<T> {
  // Inside the daemon serving the VG: work on its online VG, which stays varied on.
  const online = onlineVg(vgName)
  if (online !== undefined) return await fn(online.vg)
  const devices = deviceList(options)
  await requireVgExists(vgName, devices)
  const result = await varyOnVg({ vgName, devices, flags: { misspvVon: true, missnameVon: true },
    backup: cliBackup(options) })
  if (result.vg === undefined) throw errorOf(result)
  try {
    return await fn(result.vg)
  } finally {
    await result.vg.varyOff()
  }
}

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n') + '\n'
}

export function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024
    unit++
  }
  if (value >= 1024 && unit < units.length - 1) return `${(value / 1024).toFixed(2)}${units[unit + 1]}`
  return `${value}${units[unit]}`
}

/** "+1G" / "-512M" / "2G" for lvextend and lvreduce. */
export function parseSizeChange(text: string, what: string): { relative: -1 | 0 | 1; bytes: number } {
  const sign = text.startsWith('+') ? 1 : text.startsWith('-') ? -1 : 0
  return { relative: sign, bytes: parseSizeBytes(sign === 0 ? text : text.slice(1), what) }
}

export function print(options: DeviceOptions, json: unknown, text: string): void {
  stdout().write(options.json === true ? JSON.stringify(json) + '\n' : text)
}

export function requireName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,126}$/.test(name)) {
    throw new LvmfsError('ENGINE_USAGE', `invalid ${kind} name "${name}"`, {
      detail: 'Names are 1-127 characters from [A-Za-z0-9_.+-] and do not start with "-", "." or "+".' })
  }
}

/** The lvm_varyonvg flags as CLI options, shared by varyonvg and mount. */
export interface VaryOnCliOptions {
  readonly force?: boolean
  readonly resync: boolean
  readonly missingOk?: boolean
  readonly nonameOk?: boolean
  readonly open: boolean
}

export function addVaryOnOptions(command: Command, resyncWhen = ''): Command {
  return command
    .option('-f, --force', 'vary on without a quorum; missing PVs become REMOVED (risky)')
    .option('--no-resync', `do not resynchronise stale partitions${resyncWhen} (auto_resync false)`)
    .option('--missing-ok', 'vary on although PVs are missing (misspv_von)')
    .option('--noname-ok', 'treat member PVs not found among the devices as missing (missname_von)')
    .option('--no-open', 'management only: logical volumes cannot be opened (noopen_lvs)')
}

/** --force implies --missing-ok and --noname-ok (override needs misspv_von). */
export function varyOnFlagsOf(options: VaryOnCliOptions): VaryOnFlags {
  const force = options.force === true
  return { override: force, misspvVon: force || options.missingOk === true,
    missnameVon: force || options.nonameOk === true, autoResync: options.resync, noopenLvs: !options.open }
}
