/**
 * nbdkit on a unix socket for in-process tests of remote PVs: started by the test, restartable
 * on the same socket (a server coming back), killed (and continued, if stopped) at teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { nativeAddon } from '../../src/native/index.js'

/** Why nbdkit tests cannot run here, or false. */
export function nbdkitUnavailable(): string | false {
  if (spawnSync('nbdkit', ['--version']).status !== 0) return 'nbdkit is not installed'
  return nativeAddon()['NbdConnection'] === undefined ? 'the addon was built without libnbd' : false
}

export interface Nbdkit {
  readonly uri: string
  readonly child: ChildProcess
  /** SIGKILL, waiting for the exit. */
  kill(): Promise<void>
  /** SIGSTOP, resolving once every thread of the server is stopped (the signal is asynchronous:
   * a request sent right after kill() could still be answered). */
  stop(): Promise<void>
  /** A new server with the same arguments on the same socket (kill the old one first). */
  restart(): Promise<Nbdkit>
}

export async function serveNbdkit(t: Test, args: readonly string[], dir?: string): Promise<Nbdkit> {
  // A unix socket's path must fit in 108 bytes, which tap's fixture directories do not.
  const socketDir = dir ?? mkdtempSync(join(tmpdir(), 'lvmfs-nbd-'))
  if (dir === undefined) t.teardown(() => rmSync(socketDir, { recursive: true, force: true }))
  const socket = join(socketDir, 'nbd.sock')
  rmSync(socket, { force: true })
  const child = spawn('nbdkit', ['--foreground', '--exit-with-parent', '-U', socket, ...args], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = async (): Promise<void> => {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await exited
  }
  const stop = async (): Promise<void> => {
    child.kill('SIGSTOP')
    for (let i = 0; i < 400 && !allStopped(child.pid!); i++) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.teardown(kill)
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 25))
  return { uri: `nbd+unix:///?socket=${socket}`, child, kill, stop, restart: () => serveNbdkit(t, args, socketDir) }
}

function allStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) =>
      /^\d+ \(.*\) [Tt] /.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')))
  } catch {
    return true
  }
}
