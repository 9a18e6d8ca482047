/**
 * Descriptor backups (LVM2's /etc/lvm/backup): after every committed descriptor, the process
 * that committed it keeps a copy in a backup directory, the last N per VG, so `vgcfgrestore`
 * can put a known configuration back when every VGDA copy is damaged or a change was a mistake.
 *
 * Layout (docs/format.md §9): `<dir>/<vgId>/<seq, 16 digits>.json`, one directory per VG id (a
 * vgrename keeps its history together), file names sorting by seq. Each file is one JSON object
 * carrying the encoded descriptor body and its crc32c, so a damaged backup is detected before it
 * is restored. Files are written to a temporary name, fsync'd, renamed, and the directory
 * fsync'd: a crash leaves the old set or the new one.
 *
 * A backup is a convenience, never part of the commit: `save` reports a failure through `warn`
 * and resolves, so a full or read-only backup directory never fails a VG change.
 */
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { crc32c, decodeDescriptorBody, encodeDescriptorBody, isId } from '../format/index.js'
import type { VgDescriptor } from './model.js'

export const DEFAULT_BACKUP_DIR = '/etc/lvmfs/backup'
export const DEFAULT_BACKUP_KEEP = 10
const BACKUP_FORMAT = 'lvmfs-vgcfg'
const FILE_PATTERN = /^\d{16}\.json$/

/** Where descriptors go after each commit (the CLI and the daemon supply one to varyOnVg). */
export interface DescriptorBackup {
  /** Called after every committed descriptor, in commit order. Never rejects. */
  save(descriptor: VgDescriptor): Promise<void>
}

/** `--backup-dir`, else LVMFS_BACKUP_DIR, else /etc/lvmfs/backup. */
export function resolveBackupDir(option?: string): string {
  const fromEnv = process.env['LVMFS_BACKUP_DIR']
  return option ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_BACKUP_DIR : fromEnv)
}

export function encodeBackup(d: VgDescriptor): string {
  const body = encodeDescriptorBody(d)
  return JSON.stringify({ format: BACKUP_FORMAT, v: 1, vgId: d.vgId, name: d.name, seq: d.seq,
    bodyCrc: crc32c(body), body: new TextDecoder().decode(body) }) + '\n'
}

function damaged(path: string, why: string): LvmfsError {
  return new LvmfsError('ENGINE_CORRUPT', `descriptor backup "${path}" is damaged: ${why}`, {
    hint: 'Restore another backup (vgcfgrestore VG --list shows them).', context: { path, reason: why } })
}

/** Decodes a backup file's text; ENGINE_CORRUPT naming `path` when any check fails. */
export function decodeBackup(text: string, path: string): VgDescriptor {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw damaged(path, 'not JSON')
  }
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  if (o['format'] !== BACKUP_FORMAT) throw damaged(path, 'not an lvmfs descriptor backup')
  if (o['v'] !== 1) throw damaged(path, `unknown backup version ${String(o['v'])}`)
  if (typeof o['body'] !== 'string') throw damaged(path, 'no descriptor body')
  const body = new TextEncoder().encode(o['body'])
  if (crc32c(body) !== o['bodyCrc']) throw damaged(path, 'checksum mismatch')
  let d: VgDescriptor
  try {
    d = decodeDescriptorBody(body)
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    throw damaged(path, error.message)
  }
  if (d.vgId !== o['vgId'] || d.seq !== o['seq'] || d.name !== o['name']) throw damaged(path, 'header and body disagree')
  return d
}

/** Writes `text` at `path` atomically and durably (tmp file, fsync, rename, fsync of the dir). */
export async function writeFileDurably(path: string, text: string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const tmp = `${path}.tmp-${process.pid}`
  const file = await open(tmp, 'w', 0o600)
  try {
    await file.writeFile(text)
    await file.sync()
  } finally {
    await file.close()
  }
  try {
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => undefined)
    throw error
  }
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export interface BackupEntry {
  readonly path: string
  readonly seq: number
  /** The decoded descriptor, or why the file is unusable. */
  readonly descriptor?: VgDescriptor
  readonly problem?: string
}

/** The backup directory of one machine: writes after commits, lists and reads for restores. */
export class FileDescriptorBackup implements DescriptorBackup {
  constructor(readonly dir: string, private readonly warn: (message: string) => void,
    readonly keep = DEFAULT_BACKUP_KEEP) {}

  pathFor(d: VgDescriptor): string {
    return join(this.dir, d.vgId, `${String(d.seq).padStart(16, '0')}.json`)
  }

  async save(d: VgDescriptor): Promise<void> {
    try {
      await this.write(d)
    } catch (error) {
      this.warn(`descriptor backup of "${d.name}" (seq ${d.seq}) not written to ${this.dir}: ` +
        `${error instanceof Error ? error.message : String(error)}`)
    }
  }

  /** Writes one backup and prunes the VG's oldest beyond `keep`; rejects on failure. */
  async write(d: VgDescriptor): Promise<string> {
    const path = this.pathFor(d)
    await writeFileDurably(path, encodeBackup(d))
    const files = await this.files(d.vgId)
    for (const old of files.slice(0, Math.max(0, files.length - this.keep))) {
      await unlink(join(this.dir, d.vgId, old)).catch(() => undefined)
    }
    return path
  }

  private async files(vgId: string): Promise<string[]> {
    const names = await readdir(join(this.dir, vgId)).catch(() => [] as string[])
    return names.filter((name) => FILE_PATTERN.test(name)).sort()
  }

  /** The VG's backups, oldest first, each decoded or with its problem. */
  async list(vgId: string): Promise<BackupEntry[]> {
    const out: BackupEntry[] = []
    for (const name of await this.files(vgId)) {
      const path = join(this.dir, vgId, name)
      try {
        out.push({ path, seq: Number(name.slice(0, 16)), descriptor: decodeBackup(await readFile(path, 'utf8'), path) })
      } catch (error) {
        if (!isLvmfsError(error)) throw error
        out.push({ path, seq: Number(name.slice(0, 16)), problem: error.message })
      }
    }
    return out
  }

  /** Ids of the VGs whose newest readable backup is named `name` (finds a VG whose every
   * descriptor copy is gone, by the name it last had). */
  async vgIdsNamed(name: string): Promise<string[]> {
    const ids = (await readdir(this.dir).catch(() => [] as string[])).filter((id) => isId(id))
    const out: string[] = []
    for (const vgId of ids) {
      const newest = (await this.list(vgId)).filter((e) => e.descriptor !== undefined).at(-1)
      if (newest?.descriptor?.name === name) out.push(vgId)
    }
    return out
  }
}

/** Reads a backup file named by the user (`vgcfgrestore -f`). */
export async function readBackupFile(path: string): Promise<VgDescriptor> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new LvmfsError('ENGINE_NOT_FOUND', `cannot read descriptor backup "${path}"`, {
      detail: error instanceof Error ? error.message : String(error), context: { path } })
  }
  return decodeBackup(text, path)
}
