/**
 * Test fixtures for the lock broker: a temporary socket directory, the command that starts a
 * broker from source (tsx), and child processes running test/helpers/dlm-child.ts. Everything
 * started here is killed and removed in teardown, also when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerPid } from '../../src/dlm/broker-files.js'
import { DlmClient, type DlmClientOptions } from '../../src/dlm/client.js'

const root = new URL('../../', import.meta.url).pathname

export const brokerCommand = {
  command: process.execPath,
  args: ['--import', 'tsx', join(root, 'test/helpers/dlm-lockd.ts')],
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface BrokerFixture {
  readonly socketPath: string
  readonly children: Set<ChildProcess>
  child(args: string[], options?: { waitGo?: boolean }): Child
  /** A DlmClient on this broker, closed in teardown before the broker is killed. */
  connect(extra?: Partial<DlmClientOptions>): Promise<DlmClient>
  brokerPid(): number | null
  killBroker(signal?: NodeJS.Signals): Promise<void>
}

export interface Child {
  readonly process: ChildProcess
  /** Resolves with the first stdout line starting with `prefix` (the rest of the line). */
  line(prefix: string, timeoutMs?: number): Promise<string>
  /** With waitGo: tells the child to run its command. */
  go(): void
  kill9(): Promise<void>
}

export function brokerFixture(t: Teardown): BrokerFixture {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-dlm-'))
  const socketPath = join(dir, 'lockd.sock')
  const children = new Set<ChildProcess>()
  const clients: DlmClient[] = []
  const env = { ...process.env, LVMFS_LOCKD_SOCKET: socketPath }
  const fixture: BrokerFixture = {
    socketPath,
    children,
    child(args, options = {}) {
      const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/dlm-child.ts'), ...args],
        { env: { ...env, LVMFS_CHILD_WAIT_GO: options.waitGo === true ? '1' : '0' },
          stdio: ['pipe', 'pipe', 'inherit'] })
      children.add(proc)
      proc.on('exit', () => children.delete(proc))
      let buffered = ''
      const lines: string[] = []
      const waiters: Array<() => void> = []
      proc.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8')
        let index: number
        while ((index = buffered.indexOf('\n')) >= 0) {
          lines.push(buffered.slice(0, index))
          buffered = buffered.slice(index + 1)
        }
        for (const waiter of waiters.splice(0)) waiter()
      })
      return {
        process: proc,
        go() {
          proc.stdin!.write('go\n')
        },
        async line(prefix, timeoutMs = 30_000) {
          const deadline = Date.now() + timeoutMs
          for (;;) {
            const found = lines.find((line) => line.startsWith(prefix))
            if (found !== undefined) return found.slice(prefix.length).trim()
            if (proc.exitCode !== null || Date.now() > deadline) {
              throw new Error(`child ${args.join(' ')} did not print "${prefix}" (exit ${proc.exitCode})`)
            }
            await new Promise<void>((resolve) => {
              waiters.push(resolve)
              setTimeout(resolve, 100)
            })
          }
        },
        async kill9() {
          if (proc.exitCode !== null || proc.signalCode !== null) return
          const exited = new Promise((resolve) => proc.once('exit', resolve))
          proc.kill('SIGKILL')
          await exited
        },
      }
    },
    async connect(extra = {}) {
      const client = await DlmClient.connect({ socketPath, brokerCommand, ...extra })
      clients.push(client)
      return client
    },
    brokerPid: () => brokerPid(socketPath),
    async killBroker(signal = 'SIGKILL') {
      const pid = brokerPid(socketPath)
      if (pid === null) return
      process.kill(pid, signal)
      for (let i = 0; i < 200; i++) {
        try {
          process.kill(pid, 0)
        } catch {
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    },
  }
  t.teardown(async () => {
    await Promise.all(clients.map((client) => client.close()))
    for (const child of children) child.kill('SIGKILL')
    await fixture.killBroker('SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 100))
    await fixture.killBroker('SIGKILL') // one a reconnecting client may have started meanwhile
    rmSync(dir, { recursive: true, force: true })
  })
  return fixture
}
