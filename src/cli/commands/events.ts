import type { Command } from 'commander'
import { callControl, socketPath } from '../../engine/index.js'
import { findMounted, socketVgNames, statusOfVg } from '../daemon-cli.js'
import { stdout } from '../io-context.js'

/** Control sockets of the daemons to follow: the one serving `target`, else every live one. */
async function socketsOf(target: string | undefined): Promise<string[]> {
  if (target !== undefined) {
    const status = await findMounted(target)
    return [socketPath(status.instance ?? status.vg)]
  }
  const live: string[] = []
  for (const name of socketVgNames()) {
    try {
      await statusOfVg(name)
      live.push(socketPath(name))
    } catch { /* a stale socket of a dead daemon */ }
  }
  return live
}

/**
 * `lvmfs events [VG|MOUNTPOINT]`: the state changes of one or every mounted VG as JSON lines,
 * until Ctrl-C or until the daemons exit (docs/control-protocol.md, method `events`).
 */
export function register(program: Command): void {
  program.command('events')
    .description('stream state changes of mounted VGs (PVs, stale partitions, resyncs, jobs) as JSON lines')
    .argument('[target]', 'volume group name or mount point (default: every mounted VG)')
    .action(async (target: string | undefined) => {
      const sockets = await socketsOf(target)
      const stop = new AbortController()
      const onSignal = (): void => stop.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        // One daemon failing ends the others' streams too, so the command never hangs half-done.
        await Promise.all(sockets.map((path) => callControl(path, 'events', {}, (event, data) => {
          if (event === 'state') stdout().write(JSON.stringify(data) + '\n')
        }, stop.signal).catch((error: unknown) => {
          stop.abort()
          throw error
        })))
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    })
}
