/**
 * Which devices commands look at: `--devices PATH[,PATH...]`, else the LVMFS_DEVICES variable
 * (comma or colon separated), else /etc/lvmfs/devices (one path or glob per line, `#`
 * comments). Globs support `*`, `?` and `[...]` in the last path component only, which covers
 * `/dev/loop*` and `/srv/pv/*.img`. Results keep the order given, without duplicates. NBD URIs
 * (`nbd://`, `nbd+unix://`) are taken as they are, never as globs; a LVMFS_DEVICES value holding
 * one is split on commas only, since a URI holds colons.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import { isRemoteDevicePath } from './nbd-device.js'

export const DEVICES_FILE = '/etc/lvmfs/devices'

export function resolveDeviceList(option: string | undefined,
  env: NodeJS.ProcessEnv = process.env, file = DEVICES_FILE): string[] {
  let patterns: string[]
  if (option !== undefined) patterns = option.split(',')
  else if (env['LVMFS_DEVICES'] !== undefined && env['LVMFS_DEVICES'] !== '') {
    const value = env['LVMFS_DEVICES']
    patterns = value.split(value.includes('://') ? ',' : /[,:]/)
  } else {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new LvmfsError('ENGINE_USAGE', 'no devices to scan', {
        hint: `Give --devices PATH[,PATH...], set LVMFS_DEVICES, or list paths in ${file}.`,
      })
    }
    patterns = text.split('\n').map((line) => line.replace(/#.*/, ''))
  }
  const out: string[] = []
  for (const pattern of patterns.map((p) => p.trim()).filter((p) => p !== '')) {
    for (const path of expandGlob(pattern)) if (!out.includes(path)) out.push(path)
  }
  return out
}

function expandGlob(pattern: string): string[] {
  if (isRemoteDevicePath(pattern)) return [pattern]
  const name = basename(pattern)
  if (!/[*?[]/.test(name)) return [pattern]
  const dir = dirname(pattern)
  const regex = new RegExp('^' + name.replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    return []
  }
  return entries.filter((entry) => regex.test(entry)).sort().map((entry) => join(dir, entry))
}
