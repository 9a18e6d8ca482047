/**
 * The mount daemon: varies a VG on, serves it through FUSE, answers its control socket, and
 * on `lvmfs umount` or SIGTERM flushes, unmounts and varies off. Runs in the foreground; the
 * CLI starts it detached (spawnDaemon) when --foreground is not given.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino, type Logger as PinoLogger } from 'pino'
import { LvmfsError } from '../errors/index.js'
import type { VaryOnResult } from '../lvm/index.js'
import { callControl } from './control-protocol.js'
import { ControlServer, type ControlHandler } from './control-server.js'
import { EventHub } from './events.js'
import { metricsRegistry, MetricsServer } from './metrics.js'
import type { FaultMode } from './backing-fds.js'
import { MountedVg, type FaultTarget, type MountedVgOptions } from './mounted-vg.js'
import { instanceName, logPath, pidPath, socketPath, sharedInstancesOf } from './runtime-paths.js'
import { SharedMount, type SharedMountOptions } from './shared-mount.js'
import { statusOf } from './status.js'

export interface DaemonOptions extends Omit<MountedVgOptions, 'log' | 'shared'> {
  /** A shared VG mount (`--lvs`): DLM locks, and socket/pid files named VG@pid (shared-mount.ts). */
  readonly sharedLocks?: SharedMountOptions
  /** Extra control methods (the CLI layer registers `cli` here). */
  readonly handlers?: (mounted: MountedVg) => Record<string, ControlHandler>
  /** Called once mounted, with the vary-on result (the parent prints vvg_out from it). */
  readonly onReady?: (result: VaryOnResult) => void
  readonly logToStderr?: boolean
  /** `HOST:PORT` to serve Prometheus metrics on (GET /metrics); none when absent. */
  readonly metrics?: string
}

/** Throws ENGINE_ALREADY_MOUNTED when a live daemon already serves `vgName` (for a non-shared
 * mount: also any shared mount of it). */
export async function refuseIfMounted(vgName: string, options: { shared?: boolean } = {}): Promise<void> {
  let status: { mountpoint?: string; pid?: number } | undefined
  for (const name of [vgName, ...(options.shared === true ? [] : sharedInstancesOf(vgName))]) {
    try {
      status = await callControl(socketPath(name), 'status') as { mountpoint?: string; pid?: number }
      break
    } catch { /* not served there (or a stale socket) */ }
  }
  if (status === undefined) return
  throw new LvmfsError('ENGINE_ALREADY_MOUNTED', `volume group "${vgName}" is already mounted`, {
    detail: `Process ${status.pid} serves it at ${status.mountpoint}.`,
    hint: `Unmount it first with lvmfs umount ${status.mountpoint}.`, context: { ...status } })
}

const FAULT_MODES: readonly FaultMode[] = ['fail-writes', 'fail-reads', 'disappear', 'fail-fsync', 'clear']

function faultModeOf(value: unknown): FaultMode {
  if (typeof value === 'string' && (FAULT_MODES as readonly string[]).includes(value)) return value as FaultMode
  throw new LvmfsError('ENGINE_PROTOCOL', `fault: unknown mode ${JSON.stringify(value)}`, {
    detail: `Expected one of ${FAULT_MODES.join(', ')}.` })
}

/** The optional target of a `fault` request: `offsetBytes` [+ `lengthBytes`], or `lv` [+ `lps`]. */
function faultTargetOf(params: Record<string, unknown>): FaultTarget | undefined {
  const { offsetBytes, lengthBytes, lv, lps } = params
  const malformed = (what: string): LvmfsError => new LvmfsError('ENGINE_PROTOCOL', `fault: malformed ${what}`)
  const count = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
  if (lv !== undefined) {
    if (typeof lv !== 'string') throw malformed('lv')
    if (offsetBytes !== undefined || lengthBytes !== undefined) throw malformed('target (lv with a byte range)')
    if (lps === undefined) return { lv }
    if (!Array.isArray(lps) || lps.length === 0 || !lps.every(count)) throw malformed('lps')
    return { lv, lps }
  }
  if (lps !== undefined) throw malformed('target (lps without lv)')
  if (offsetBytes === undefined) {
    if (lengthBytes !== undefined) throw malformed('target (lengthBytes without offsetBytes)')
    return undefined
  }
  if (!count(offsetBytes)) throw malformed('offsetBytes')
  if (lengthBytes === undefined) return { offsetBytes }
  if (!count(lengthBytes)) throw malformed('lengthBytes')
  return { offsetBytes, lengthBytes }
}

function makeLogger(options: DaemonOptions): PinoLogger {
  if (options.logToStderr === true) return pino({ base: { vg: options.vgName } }, process.stderr)
  mkdirSync(dirname(logPath(options.vgName)), { recursive: true })
  return pino({ base: { vg: options.vgName } }, pino.destination({ dest: logPath(options.vgName), sync: true }))
}

/** Runs the daemon until unmounted; resolves with the process exit code. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  await refuseIfMounted(options.vgName, { shared: options.sharedLocks !== undefined })
  const log = makeLogger(options)
  const shared = options.sharedLocks === undefined ? undefined
    : await SharedMount.prepare(options.sharedLocks, options.vgName, options.devices, log)
  let mounted: MountedVg
  try {
    mounted = await MountedVg.start({ ...options, log, ...(shared ? { shared: shared.hooks() } : {}) })
  } catch (error) {
    await shared?.close()
    throw error
  }
  log.info({ mountpoint: options.mountpoint, rc: mounted.varyOn.rc }, 'volume group mounted')
  let metrics: MetricsServer | undefined
  try {
    metrics = options.metrics === undefined ? undefined
      : await MetricsServer.listen(metricsRegistry(mounted), options.metrics)
  } catch (error) {
    await mounted.stop({ force: true }).catch(() => undefined)
    await shared?.close()
    throw error
  }
  if (metrics) log.info({ metrics: metrics.address }, 'serving metrics')
  const events = new EventHub(mounted)
  const instance = shared ? instanceName(options.vgName, process.pid) : options.vgName
  const control = new ControlServer(socketPath(instance))
  let stopping: Promise<void> | undefined
  const stop = (force: boolean): Promise<void> => {
    stopping ??= mounted.stop({ force }).catch((error: unknown) => {
      stopping = undefined
      throw error
    })
    return stopping
  }
  control
    .on('status', async () => ({ ...statusOf(mounted, [...mounted.activities.values()], mounted.openGates),
      replicas: [...await mounted.replication.statuses(mounted.vg.name),
        ...await mounted.replication.targetStatuses(mounted.vg.name)],
      ...(mounted.replicaVgs === undefined || mounted.replicaVgs.related().length === 0 ? {}
        : { replicaVgs: mounted.replicaVgs.states() }),
      thinPools: await mounted.thin.reports(),
      ...(mounted.transport === undefined ? {} : { transport: mounted.transport }),
      ...(mounted.blockDevices === undefined ? {} : { blockDevices: mounted.blockDevices.report(),
        blockDeviceProblems: mounted.blockDevices.problems() }),
      ...(shared ? { instance, shared: shared.report() } : {}) }))
    .on('fault', async (params) => mounted.setFault(String(params['pv']), faultModeOf(params['mode']), faultTargetOf(params)))
    .on('events', async (_params, emit, signal) => await events.stream((event) => emit('state', event), signal))
    .on('umount', async (params) => {
      await stop(params['force'] === true)
      return { unmounted: options.mountpoint }
    })
  for (const [method, handler] of Object.entries(options.handlers?.(mounted) ?? {})) control.on(method, handler)
  try {
    await control.listen()
  } catch (error) {
    // Nobody could reach this daemon to unmount it: it must not stay mounted.
    events.close()
    await metrics?.close()
    await mounted.stop({ force: true }).catch(() => undefined)
    await shared?.close()
    throw error
  }
  writeFileSync(pidPath(instance), `${process.pid}\n`)
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'stopping on signal')
    void stop(true).catch((error: unknown) => log.error({ err: error }, 'stop failed'))
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  options.onReady?.(mounted.varyOn)
  const exitCode = await mounted.closed
  if (!stopping) {
    log.warn({}, 'mount went away without lvmfs umount; varying off')
    await stop(true).catch((error: unknown) => log.error({ err: error }, 'vary-off after external unmount failed'))
  } else {
    await stopping.catch(() => undefined)
  }
  await shared?.close().catch((error: unknown) => log.error({ err: error }, 'releasing the DLM locks failed'))
  events.close()
  await metrics?.close()
  await control.close()
  rmSync(pidPath(instance), { force: true })
  process.off('SIGTERM', onSignal)
  process.off('SIGINT', onSignal)
  log.info({}, 'volume group unmounted and varied off')
  log.flush?.()
  return exitCode === 0 ? 0 : 5
}

export interface ReadyMessage {
  readonly ready?: { rc: string; vvgOut: unknown }
  readonly error?: { code: string; message: string; detail?: string; hint?: string }
}

/** What a CLI process hands the daemon it starts: plain data, sent over the IPC channel (the
 * callbacks are the daemon process's own). */
export type DaemonStartOptions = Omit<DaemonOptions, 'handlers' | 'onReady' | 'logToStderr'>

interface StartMessage {
  readonly start: DaemonStartOptions
}

/**
 * Starts `entry` (the CLI's hidden daemon command) as a detached process whose output goes to
 * the VG's log file, sends it `options` over IPC, and waits until it has mounted or failed.
 */
export async function spawnDaemon(vgName: string, entry: readonly string[],
  options: DaemonStartOptions): Promise<ReadyMessage> {
  mkdirSync(dirname(logPath(vgName)), { recursive: true })
  const logFd = openSync(logPath(vgName), 'a')
  // The TypeScript side's own PV I/O (thin block copies, metadata, resync of mirrored LVs) runs
  // on libuv's pool, 4 threads unless told: a burst of thin misses would queue behind 4 copies.
  const child = spawn(process.execPath, [...process.execArgv, ...entry], { detached: true,
    stdio: ['ignore', logFd, logFd, 'ipc'], env: { ...process.env, UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16' } })
  const message = await new Promise<ReadyMessage>((resolve) => {
    child.once('message', (value) => resolve(value as ReadyMessage))
    child.once('exit', (code) => resolve({ error: { code: 'ENGINE_IO',
      message: `the daemon exited with code ${code} before mounting; see ${logPath(vgName)}` } }))
    child.send({ start: options } satisfies StartMessage)
  })
  child.disconnect()
  child.unref()
  return message
}

/** In the daemon process spawnDaemon started: the options its parent sends. */
export function receiveStartOptions(): Promise<DaemonStartOptions> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(new LvmfsError('ENGINE_USAGE', 'the daemon entry is started by lvmfs mount, not by hand'))
      return
    }
    process.once('message', (message: StartMessage) => resolve(message.start))
  })
}
