/**
 * bench:remote — PVs over NBD (issue 14), in one run. The "remote host" is a network namespace
 * joined by a veth pair; nbdkit's file plugin serves dd-filled files from it.
 *
 *   linear LV on a VG whose one PV is an NBD export, against fio's own NBD engine (libnbd) on
 *   the same export:   1 MiB sequential read qd8, 4 KiB random read qd32     target >= 0.8
 *                      (and the writes, for the record)
 *   for context, the same workloads on a linear LV on a local PV file and on that raw file: what
 *   FUSE itself costs on this machine, whatever the PV is
 *   2-copy mirror, one copy on a local file and one on an NBD export, 1 MiB sequential write qd8,
 *   against the slower leg alone (the local file through libaio, the export through fio's NBD
 *   engine)                                                                 target >= 0.8
 *
 *   npm run bench:remote -- [--json] [--runtime S] [--size-mb N] [--dir DIR]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { createRemoteHost, spawnNbdServer, type NbdServer } from '../test/helpers/remote-host.js'
import { fillFile, runNbdWorkload, runWorkload, type Workload } from './bench/fio.js'
import { lvmfsRunner, parseRunArgs } from './bench/run-args.js'

const { json, runtimeSeconds, sizeMb, sizeBytes, dir } = parseRunArgs('bench:remote')
const MIB = 1 << 20
const work = mkdtempSync(join(dir, 'lvmfs-bench-remote-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log'),
  LVMFS_BACKUP_DIR: join(work, 'backup') }
const lvmfs = lvmfsRunner(env)
const results: Record<string, number> = {}

const READS: readonly Workload[] = [
  { name: 'seq-read-1M-qd8', unit: 'MB/s', rw: 'read', bs: '1M', iodepth: 8 },
  { name: 'rand-read-4k-qd32', unit: 'IOPS', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'seq-write-1M-qd8', unit: 'MB/s', rw: 'write', bs: '1M', iodepth: 8 },
  { name: 'rand-write-4k-qd32', unit: 'IOPS', rw: 'randwrite', bs: '4k', iodepth: 32 },
]
const SEQ_WRITE = READS[2]!

function log(line: string): void {
  if (!json) process.stdout.write(`${line}\n`)
}

/** A file of `bytes` written in full (so no measured pass allocates blocks). */
function filledFile(name: string, bytes: number): string {
  const file = join(work, name)
  fillFile(file, bytes)
  return file
}

function mountVg(vg: string, devices: string[], lvs: Array<{ name: string, copies: number }>): string {
  const list = devices.join(',')
  lvmfs(['pvcreate', '--force', ...devices])
  lvmfs(['vgcreate', vg, ...devices, '--pp-size', '4M', '--devices', list])
  for (const lv of lvs) {
    lvmfs(['lvcreate', vg, lv.name, '--size', `${sizeMb}M`, '--copies', String(lv.copies), '--devices', list])
  }
  const mountpoint = join(work, `mnt-${vg}`)
  mkdirSync(mountpoint, { recursive: true })
  lvmfs(['mount', vg, mountpoint, '--devices', list])
  return mountpoint
}

const ratio = (value: number, base: number): string => (value / base).toFixed(2)

const host = createRemoteHost()
const servers: NbdServer[] = []
const mountpoints: string[] = []
try {
  // Exports a little larger than the LV: PV label and descriptor areas come first.
  const exportBytes = sizeBytes + 64 * MIB
  const linearExport = await spawnNbdServer(host, filledFile('linear-export.img', exportBytes), 10809)
  servers.push(linearExport)
  const mirrorExport = await spawnNbdServer(host, filledFile('mirror-export.img', exportBytes), 10810)
  servers.push(mirrorExport)
  const localPv = filledFile('local-pv.img', exportBytes)
  const localRaw = filledFile('local-raw.img', sizeBytes)

  const linearMount = mountVg(`rl${process.pid}`, [linearExport.uri], [{ name: 'linear', copies: 1 }])
  mountpoints.push(linearMount)
  fillFile(join(linearMount, 'linear'), sizeBytes)
  log(`NBD export served from namespace ${host.namespace} (${host.address}), ${sizeMb} MiB, ${runtimeSeconds} s a pass`)
  log('\nlinear LV on one NBD PV vs fio --ioengine=nbd on the same export')
  log('| workload | fio nbd engine | lvmfs linear LV | ratio | target |')
  log('|---|---|---|---|---|')
  for (const workload of READS) {
    const direct = runNbdWorkload(linearExport.uri, sizeBytes, workload, runtimeSeconds)
    const lv = runWorkload(join(linearMount, 'linear'), sizeBytes, workload, runtimeSeconds)
    results[`nbd-engine-${workload.name}`] = direct
    results[`linear-lv-${workload.name}`] = lv
    const target = workload.rw === 'read' || workload.rw === 'randread' ? '>= 0.8' : '-'
    log(`| ${workload.name} | ${direct.toFixed(0)} ${workload.unit} | ${lv.toFixed(0)} ${workload.unit} | ` +
      `${ratio(lv, direct)} | ${target} |`)
  }

  const localLinearPv = filledFile('local-linear-pv.img', exportBytes)
  const localMount = mountVg(`rf${process.pid}`, [localLinearPv], [{ name: 'linear', copies: 1 }])
  mountpoints.push(localMount)
  fillFile(join(localMount, 'linear'), sizeBytes)
  log('\nfor context: the same on a local file, raw and as the one PV of a linear LV')
  log('| workload | raw local file | lvmfs linear LV on it | ratio |')
  log('|---|---|---|---|')
  for (const workload of READS) {
    const raw = runWorkload(localRaw, sizeBytes, workload, runtimeSeconds)
    const lv = runWorkload(join(localMount, 'linear'), sizeBytes, workload, runtimeSeconds)
    results[`local-raw-${workload.name}`] = raw
    results[`local-linear-lv-${workload.name}`] = lv
    log(`| ${workload.name} | ${raw.toFixed(0)} ${workload.unit} | ${lv.toFixed(0)} ${workload.unit} | ${ratio(lv, raw)} |`)
  }

  const mirrorMount = mountVg(`rm${process.pid}`, [localPv, mirrorExport.uri], [{ name: 'mirror', copies: 2 }])
  mountpoints.push(mirrorMount)
  fillFile(join(mirrorMount, 'mirror'), sizeBytes)
  const localLeg = runWorkload(localRaw, sizeBytes, SEQ_WRITE, runtimeSeconds)
  const remoteLeg = runNbdWorkload(mirrorExport.uri, sizeBytes, SEQ_WRITE, runtimeSeconds)
  const mirror = runWorkload(join(mirrorMount, 'mirror'), sizeBytes, SEQ_WRITE, runtimeSeconds)
  const slower = Math.min(localLeg, remoteLeg)
  Object.assign(results, { 'local-leg-seq-write-1M-qd8': localLeg, 'remote-leg-seq-write-1M-qd8': remoteLeg,
    'mirror-seq-write-1M-qd8': mirror })
  log('\n2-copy mirror, local file + NBD export, vs the slower leg alone')
  log('| workload | local file | NBD export (fio nbd) | local+remote mirror | / slower leg | target |')
  log('|---|---|---|---|---|---|')
  log(`| seq-write-1M-qd8 | ${localLeg.toFixed(0)} MB/s | ${remoteLeg.toFixed(0)} MB/s | ${mirror.toFixed(0)} MB/s | ` +
    `${ratio(mirror, slower)} | >= 0.8 |`)
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`)
} finally {
  for (const mountpoint of mountpoints) {
    try {
      lvmfs(['umount', mountpoint, '--force'])
    } catch {
      if (mountsAt(mountpoint).length > 0) cleanupMountpoint(mountpoint, { force: true })
    }
  }
  for (const server of servers) await server.kill()
  host.remove()
  rmSync(work, { recursive: true, force: true })
}
