import type { Command } from 'commander'
import { Broker, socketPathFromEnv } from '../../dlm/index.js'
import { parseIntegerOption } from '../options.js'

/**
 * `lvmfs lockd`: runs the lock broker in the foreground until SIGTERM or SIGINT. Normally it is
 * started on demand by the first lvmfs process that locks (`--daemon`, detached, no output).
 */
export function register(program: Command): void {
  program.command('lockd')
    .description('run the lock broker (normally started on demand)')
    .option('--socket <path>', 'Unix socket path (default $LVMFS_LOCKD_SOCKET or /run/lvmfs/lockd.sock)')
    .option('--grace-ms <ms>', 'grace period after a restart, in milliseconds', '5000')
    .option('--daemon', 'started on demand: no output; exit quietly if a broker already runs')
    .option('--idle-exit-ms <ms>', 'exit after this long without clients and without lock state (0 = never)', '0')
    .action(async (options: { socket?: string, graceMs: string, daemon?: boolean, idleExitMs: string }) => {
      const socketPath = options.socket ?? socketPathFromEnv()
      const graceMs = parseIntegerOption(options.graceMs, '--grace-ms', 0, 600_000)
      const quiet = options.daemon === true
      const log = (line: string): void => {
        if (!quiet) process.stderr.write(`lvmfs lockd: ${line}\n`)
      }
      const idleExitMs = parseIntegerOption(options.idleExitMs, '--idle-exit-ms', 0, 86_400_000)
      let stop: () => void = () => {}
      const stopped = new Promise<void>((resolve) => {
        stop = resolve
      })
      const broker = new Broker({ socketPath, graceMs, log, idleExitMs, onIdle: () => stop() })
      if (!(await broker.start())) {
        log(`another broker already serves ${socketPath}`)
        return
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
      await stopped
      await broker.stop()
      log('stopped')
    })
}
