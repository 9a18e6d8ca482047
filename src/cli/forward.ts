/**
 * Commands on a mounted VG go to its daemon: the user's `lvmfs lvcreate VG ...` is sent over the
 * control socket as argv, run there against the online VG (io-context.ts), and its output and
 * exit code come back. Both ends live here.
 */
import type { Command } from 'commander'
import { statSync } from 'node:fs'
import { absoluteDevicePath, isRemoteDevicePath, resolveDeviceList } from '../io/index.js'
import { callControl, type ControlHandler, type MountedVg } from '../engine/index.js'
import { daemonSocketFor } from './daemon-cli.js'
import { insideDaemon, runInContext, type OutputStream } from './io-context.js'

/** Verbs that act on one VG named by their first argument (VG or VG/LV). */
export const FORWARDED_VERBS = new Set(['lvcreate', 'lvextend', 'lvreduce', 'lvremove', 'lvrename', 'lvchange', 'vgextend',
  'vgreduce', 'varyonvg', 'lvs', 'vgs', 'pvs', 'resync', 'syncvg', 'scrub', 'replicate', 'split', 'list', 'chlwm',
  'primrec', 'job', 'lvdisplay', 'vgdisplay', 'lvconvert', 'pvmove', 'thin-check'])

// The day-two metadata verbs: the daemon runs them on its online VG, or refuses the ones LVM2
// refuses on an active VG (vgcfgrestore, vgremove, vgrename) with a clear error.
for (const verb of ['vgcfgbackup', 'vgcfgrestore', 'pvchange', 'vgremove', 'vgrename']) FORWARDED_VERBS.add(verb)

/** Thrown by the pre-action hook once a forwarded command has finished. */
export class ForwardedCommand extends Error {
  constructor(readonly exitCode: number) {
    super('forwarded to the daemon')
  }
}

let nextActivity = 1

/** The daemon side: runs `argv` with a fresh program inside the mounted VG's context. */
export function forwardedCommandHandlers(mounted: MountedVg): Record<string, ControlHandler> {
  return {
    cli: async (params, emit) => {
      const argv = params['argv'] as string[]
      const stream = (event: 'stdout' | 'stderr'): OutputStream => ({
        isTTY: params['isTTY'] === true, columns: Number(params['columns'] ?? 80),
        write: (chunk, callback) => { emit(event, chunk); callback?.(); return true },
      })
      const id = nextActivity++
      const { runCli } = await import('./program.js')
      try {
        const exitCode = await runInContext({ stdout: stream('stdout'), stderr: stream('stderr'), online: {
          vg: mounted.vg, engine: mounted.engine, replication: mounted.replication, registry: mounted.registry,
          isLvOpen: (lvId) => mounted.openCounts.has(lvId),
          ...(mounted.replicaVgs === undefined ? {} : {
            openReplicaVg: (vgName: string, devices: readonly string[]) => mounted.replicaVgs!.open(vgName, devices) }),
          progress: (doneBytes, totalBytes, rate) => mounted.activities.set(id, { id, what: argv.join(' '), doneBytes,
            totalBytes, ...rate }),
        } }, () => runCli(argv))
        // The command returns once the mount shows its commits (files gone, modes, read-only maps).
        await mounted.refresh()
        return { exitCode }
      } finally {
        mounted.activities.delete(id)
      }
    },
  }
}

/**
 * The daemon runs in another directory and environment: device paths (in --devices, from
 * LVMFS_DEVICES, or named as arguments) travel as absolute paths.
 */
export function absoluteDeviceArgs(argv: readonly string[]): string[] {
  const out: string[] = []
  let sawDevices = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--devices' && i + 1 < argv.length) {
      out.push(arg, absoluteList(argv[++i]!))
      sawDevices = true
    } else if (arg.startsWith('--devices=')) {
      out.push(`--devices=${absoluteList(arg.slice('--devices='.length))}`)
      sawDevices = true
    } else {
      out.push(!arg.startsWith('-') && isDevicePath(arg) ? absoluteDevicePath(arg) : arg)
    }
  }
  if (!sawDevices) {
    try {
      out.push('--devices', resolveDeviceList(undefined).map((path) => absoluteDevicePath(path)).join(','))
    } catch { /* nothing configured here: the daemon's own default applies */ }
  }
  return out
}

function absoluteList(list: string): string {
  return list.split(',').map((path) => (path === '' ? path : absoluteDevicePath(path))).join(',')
}

function isDevicePath(arg: string): boolean {
  if (isRemoteDevicePath(arg)) return true
  try {
    const stat = statSync(arg)
    return stat.isFile() || stat.isBlockDevice()
  } catch {
    return false
  }
}

function vgNameOf(command: Command): string | undefined {
  const first = command.args[0]
  if (first === undefined) return undefined
  // Job ids are "VG.lvId".
  if (command.name() === 'job') return first.includes('.') ? first.slice(0, first.lastIndexOf('.')) : undefined
  return first.split('/')[0]
}

/** The client side: a pre-action hook that forwards when a daemon serves the command's VG. */
export function installForwarding(program: Command): void {
  program.hook('preAction', async (_program, action) => {
    if (insideDaemon() || !FORWARDED_VERBS.has(action.name())) return
    const vgName = vgNameOf(action)
    if (vgName === undefined) return
    // Shared VGs: the daemon that serves the LV named as VG/LV or as the second argument.
    const lvName = action.args[0]?.split('/')[1] ?? action.args[1]
    const socket = await daemonSocketFor(vgName, lvName)
    if (socket === undefined) return
    const argv = absoluteDeviceArgs(process.argv.slice(2))
    const result = await callControl(socket, 'cli', { argv, isTTY: process.stderr.isTTY === true,
      columns: process.stderr.columns ?? 80 }, (event, data) => {
      if (event === 'stdout') process.stdout.write(String(data))
      else if (event === 'stderr') process.stderr.write(String(data))
    }) as { exitCode: number }
    throw new ForwardedCommand(result.exitCode)
  })
}

export function forwardedExitCode(error: unknown): number | undefined {
  return error instanceof ForwardedCommand ? error.exitCode : undefined
}
