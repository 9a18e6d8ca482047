/**
 * Starts a throw-away etcd on 127.0.0.1 (free ports, temporary data directory) for one test and
 * stops it in teardown. Returns null when /usr/bin/etcd is missing (the caller skips with a reason).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'

export const ETCD_BINARY = '/usr/bin/etcd'

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** `alsoListenOn`: one more address its client port listens on (another network namespace's
 * way in); the URL returned is always the loopback one. */
export async function startEtcd(t: { teardown(fn: () => unknown): void },
  options: { alsoListenOn?: string } = {}): Promise<string | null> {
  if (!existsSync(ETCD_BINARY)) return null
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-etcd-'))
  const [clientPort, peerPort] = [await freePort(), await freePort()]
  const clientUrl = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const child = spawn(ETCD_BINARY, [
    '--name', 'test', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', options.alsoListenOn === undefined ? clientUrl
      : `${clientUrl},http://${options.alsoListenOn}:${clientPort}`, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `test=${peerUrl}`, '--log-level', 'error',
  ], { stdio: 'ignore' })
  t.teardown(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  const probe = new Etcd3({ hosts: clientUrl })
  try {
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        await probe.get('probe').string()
        return clientUrl
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  } finally {
    probe.close()
  }
  throw new Error(`etcd did not start on ${clientUrl}`)
}
