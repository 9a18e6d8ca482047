import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { LvmfsError } from '../../errors/index.js'
import { absoluteDevicePath } from '../../io/index.js'
import {
  receiveStartOptions, runDaemon, spawnDaemon, parseServedLvs, parseMetricsAddress, type DaemonStartOptions,
  type SharedMountOptions,
} from '../../engine/index.js'
import type { FuseTransport } from '../../fuse/index.js'
import { PV_STATUS, scanDevices, type VaryOnResult } from '../../lvm/index.js'
import { forwardedCommandHandlers } from '../forward.js'
import { addDeviceOptions, addVaryOnOptions, deviceList, print, requireName, requireVgExists, table, varyOnFlagsOf,
  type DeviceOptions, type VaryOnCliOptions } from '../lvm-cli.js'
import { parseIntegerOption } from '../options.js'

interface Options extends DeviceOptions, VaryOnCliOptions {
  foreground?: boolean
  threads: string
  policyTimeout: string
  direct: boolean
  lvs?: string
  lockBackend: string
  etcd?: string
  lockTtl?: string
  metrics?: string
  blockDevices?: boolean
  transport: string
}

const URING_PARAMETER = '/sys/module/fuse/parameters/enable_uring'

/** `--transport`: 'uring' only where the kernel has it on (turning it on is the admin's call). */
function transportOf(options: Options): FuseTransport {
  if (options.transport === 'dev') return 'dev'
  if (options.transport !== 'uring') {
    throw new LvmfsError('ENGINE_USAGE', `invalid --transport "${options.transport}"`, { detail: 'dev or uring.' })
  }
  let enabled: string
  try {
    enabled = readFileSync(URING_PARAMETER, 'utf8').trim()
  } catch {
    throw new LvmfsError('ENGINE_USAGE', '--transport uring: this kernel has no FUSE over io_uring', {
      detail: `${URING_PARAMETER} does not exist (it needs Linux 6.14 or later with CONFIG_FUSE_IO_URING).` })
  }
  if (enabled !== 'Y') {
    throw new LvmfsError('ENGINE_USAGE', `--transport uring: FUSE over io_uring is off (${URING_PARAMETER} is ${enabled})`, {
      detail: `An administrator turns it on with: echo Y > ${URING_PARAMETER}` })
  }
  return 'uring'
}

/** `--lvs` (shared VG): the DLM options, checked here so usage errors exit 3 before spawning. */
function sharedOptions(options: Options): SharedMountOptions | undefined {
  if (options.lvs === undefined) {
    if (options.lockBackend !== 'broker' || options.etcd !== undefined) {
      throw new LvmfsError('ENGINE_USAGE', '--lock-backend and --etcd apply to shared mounts (--lvs) only')
    }
    return undefined
  }
  if (options.lockBackend !== 'broker' && options.lockBackend !== 'etcd') {
    throw new LvmfsError('ENGINE_USAGE', `invalid --lock-backend "${options.lockBackend}"`, { detail: 'broker or etcd.' })
  }
  if (options.lockBackend === 'etcd' && options.etcd === undefined) {
    throw new LvmfsError('ENGINE_USAGE', '--lock-backend etcd needs --etcd URL')
  }
  return { lvs: parseServedLvs(options.lvs), backend: options.lockBackend,
    ...(options.etcd === undefined ? {} : { etcd: options.etcd }),
    ...(options.lockTtl === undefined ? {} : { ttlSeconds: parseIntegerOption(options.lockTtl, '--lock-ttl', 1, 3600) }) }
}

function printVaryOn(options: Options, vgName: string, mountpoint: string, rc: string,
  vvgOut: VaryOnResult['vvgOut']): void {
  const rows = vvgOut.map((o) => [o.pvId, o.name ?? '-', o.status, String(PV_STATUS[o.status])])
  const allActive = vvgOut.every((o) => o.status === 'LVM_PVACTIVE')
  print(options, { vg: vgName, mountpoint, rc, vvgOut },
    (allActive ? '' : table(['PV id', 'Name', 'Status', 'Code'], rows)) +
    `volume group "${vgName}" mounted at ${mountpoint} (${rc})\n`)
}

/**
 * `lvmfs mount VG MOUNTPOINT [--devices ...] [vary-on flags] [--foreground]`: varies the VG on
 * and serves each LV as MOUNTPOINT/<lv>. Without --foreground it starts a background daemon
 * (log in /var/log/lvmfs/VG.log, pid in /run/lvmfs/VG.pid) and returns once it has mounted.
 * A shared VG (vgcreate --shared) is mounted with `--lvs a,b[:ro] [--lock-backend broker|etcd
 * --etcd URL]`: several daemons serve different LVs at once (socket and pid file VG@pid).
 */
export function register(program: Command): void {
  registerDaemonEntry(program)
  addDeviceOptions(addVaryOnOptions(program.command('mount')
    .description('vary a volume group on and serve its logical volumes as files through FUSE')
    .argument('<vg>', 'volume group name')
    .argument('<mountpoint>', 'an existing directory'), ' after vary-on')
    .option('--foreground', 'run the daemon in this process, logging to stderr')
    .option('--threads <n>', 'native FUSE reader threads (the backing queue depth)', '32')
    .option('--transport <dev|uring>', 'FUSE transport: /dev/fuse, or FUSE over io_uring (fuse.enable_uring must ' +
      'be on; default $LVMFS_TRANSPORT, then dev)', process.env['LVMFS_TRANSPORT'] ?? 'dev')
    .option('--policy-timeout <seconds>', 'a write held for MWC, resync or error handling that long fails with EIO', '30')
    .option('--no-direct', 'use the page cache for backing I/O instead of O_DIRECT')
    .option('--lvs <list>', 'shared VG: serve only these LVs ("a,b:ro"; ":ro" = read-only), under DLM locks')
    .option('--lock-backend <backend>', 'shared VG: lock manager, broker (this host) or etcd', 'broker')
    .option('--etcd <urls>', 'shared VG with --lock-backend etcd: etcd endpoint(s), comma-separated')
    .option('--lock-ttl <seconds>', 'shared VG with etcd: lease TTL (a dead holder loses its locks after it)')
    .option('--metrics <host:port>', 'serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 127.0.0.1:9633)')
    .option('--block-devices', 'also serve each linear LV as a loop device over its PV bytes, named ' +
      '/dev/lvmfs/VG/LV (its I/O bypasses the daemon; see docs/block-devices.md)'))
    .action(async (vgName: string, mountpointArg: string, options: Options) => {
      requireName('volume group', vgName)
      const mountpoint = resolve(mountpointArg)
      const threads = parseIntegerOption(options.threads, '--threads', 1, 64)
      const transport = transportOf(options)
      const policyTimeoutSeconds = parseIntegerOption(options.policyTimeout, '--policy-timeout', 1, 3600)
      if (options.metrics !== undefined) parseMetricsAddress(options.metrics)
      if (options.lvs !== undefined && options.blockDevices === true) {
        throw new LvmfsError('ENGINE_USAGE', '--block-devices does not apply to shared mounts (--lvs)', {
          detail: 'A block device\'s writes bypass the DLM locks that keep the daemons of a shared VG consistent.' })
      }
      const devices = deviceList(options).map((device) => absoluteDevicePath(device))
      await requireVgExists(vgName, devices)
      const shared = sharedOptions(options)
      if (shared === undefined) await refuseSharedWithoutLvs(vgName, devices)
      const flags = varyOnFlagsOf(options)
      const start: DaemonStartOptions = { vgName, mountpoint, devices, threads, directBacking: options.direct,
        policyTimeoutMs: policyTimeoutSeconds * 1000,
        // The background auto-resync walks every LV: not on a shared VG (shared-mount.ts).
        flags: shared ? { ...flags, autoResync: false } : flags, ...(shared ? { sharedLocks: shared } : {}),
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        ...(options.blockDevices === true ? { blockDevices: true } : {}),
        ...(transport === 'uring' ? { transport } : {}) }
      if (options.foreground !== true) {
        const message = await spawnDaemon(vgName, [process.argv[1]!, DAEMON_ENTRY], start)
        if (message.error) throw LvmfsError.fromJSON(message.error)
        const ready = message.ready!
        printVaryOn(options, vgName, mountpoint, ready.rc, ready.vvgOut as VaryOnResult['vvgOut'])
        return
      }
      await serve(start, (result) => printVaryOn(options, vgName, mountpoint, result.rc, result.vvgOut))
    })
}

/** The hidden verb `lvmfs mount` starts its background daemon with; the options come over IPC. */
const DAEMON_ENTRY = '__daemon'

export function registerDaemonEntry(program: Command): void {
  program.command(DAEMON_ENTRY, { hidden: true })
    .description('the mount daemon, started by lvmfs mount with its options over IPC')
    .action(async () => { await serve(await receiveStartOptions()) })
}

/** Runs the daemon in this process. Started by `mount` (IPC present): the parent learns the
 * vary-on result or the error over IPC; in the foreground, `printReady` shows it. */
async function serve(start: DaemonStartOptions, printReady?: (result: VaryOnResult) => void): Promise<void> {
  try {
    process.exitCode = await runDaemon({ ...start, logToStderr: process.send === undefined,
      handlers: forwardedCommandHandlers,
      onReady: (result) => {
        if (process.send) process.send({ ready: { rc: result.rc, vvgOut: result.vvgOut } })
        else printReady?.(result)
      } })
  } catch (error) {
    if (process.send && error instanceof LvmfsError) process.send({ error: error.toJSON() })
    throw error
  }
}

/** A shared VG is served LV by LV: a mount without --lvs would take every LV unlocked. */
async function refuseSharedWithoutLvs(vgName: string, devices: readonly string[]): Promise<void> {
  const { vgs } = await scanDevices(devices)
  if (vgs.some((vg) => vg.name === vgName && vg.result.descriptor?.shared === true)) {
    throw new LvmfsError('ENGINE_USAGE', `volume group "${vgName}" is shared: name the LVs to serve with --lvs`, {
      hint: `lvmfs mount ${vgName} MOUNTPOINT --lvs LV1,LV2` })
  }
}
