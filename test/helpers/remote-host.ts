/**
 * Another "host" for multi-host tests: a network namespace joined to this one by a veth pair on
 * a private link-local /30, and NBD servers (nbdkit) started inside it. Everything is torn down
 * by the test's teardown, even when the test fails: servers are killed, and deleting the
 * namespace removes both ends of the veth pair.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { truncateSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { nativeAddon } from '../../src/native/index.js'

export interface RemoteHost {
  readonly namespace: string
  /** The address of the namespace's end, where its servers listen. */
  readonly address: string
  /** The address of this end: what processes in the namespace reach this host by. */
  readonly hostAddress: string
  /** The namespace's end of the link: `ip -n NAMESPACE link set DEVICE down` cuts it. */
  readonly peerDevice: string
}

let counter = 0

/** Why remote-host tests cannot run here, or false when they can. */
export function remoteHostUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  if (spawnSync('nbdkit', ['--version']).status !== 0) return 'nbdkit is not installed'
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'ip netns is not available'
  if (nativeAddon()['NbdConnection'] === undefined) return 'the addon was built without libnbd'
  return false
}

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr}`)
}

/** Creates the namespace and its link; `remove()` deletes both (also when half made). */
export function createRemoteHost(): RemoteHost & { remove(): void } {
  const index = (process.pid * 7 + counter++) % 16_000
  const namespace = `lvmfs-t${process.pid}-${counter}`
  const hostEnd = `lvh${index}`
  const peerEnd = `lvp${index}`
  // 169.254.0.0/16 split in /30s: .1 here, .2 in the namespace.
  const base = 4 * index
  const octets = (offset: number): string => `169.254.${Math.floor((base + offset) / 256) % 256}.${(base + offset) % 256}`
  const remove = (): void => {
    spawnSync('ip', ['netns', 'delete', namespace])
    spawnSync('ip', ['link', 'delete', hostEnd])
  }
  try {
    ip(['netns', 'add', namespace])
    ip(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', peerEnd])
    ip(['link', 'set', peerEnd, 'netns', namespace])
    ip(['addr', 'add', `${octets(1)}/30`, 'dev', hostEnd])
    ip(['link', 'set', hostEnd, 'up'])
    ip(['netns', 'exec', namespace, 'ip', 'addr', 'add', `${octets(2)}/30`, 'dev', peerEnd])
    ip(['netns', 'exec', namespace, 'ip', 'link', 'set', peerEnd, 'up'])
    ip(['netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up'])
  } catch (error) {
    remove()
    throw error
  }
  return { namespace, address: octets(2), hostAddress: octets(1), peerDevice: peerEnd, remove }
}

export function makeRemoteHost(t: Test): RemoteHost {
  const host = createRemoteHost()
  t.teardown(() => host.remove())
  return host
}

export interface NbdServer {
  readonly uri: string
  readonly process: ChildProcess
  /** SIGKILL, and resolves once it is gone. */
  kill(): Promise<void>
}

/** Serves `file` (nbdkit's file plugin) from inside `host` on `port`, once it accepts connections. */
export async function spawnNbdServer(host: RemoteHost, file: string, port: number): Promise<NbdServer> {
  // `ip netns exec` execs nbdkit, so the child's pid is nbdkit's own.
  const child = spawn('ip', ['netns', 'exec', host.namespace, 'nbdkit', '--foreground', '--exit-with-parent',
    '-i', host.address, '-p', String(port), 'file', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const server: NbdServer = {
    uri: `nbd://${host.address}:${port}/`,
    process: child,
    async kill() {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
      await exited
    },
  }
  const deadline = Date.now() + 10_000
  while (!(await accepts(host.address, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await server.kill()
      throw new Error(`nbdkit did not start: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return server
}

export async function startNbdServer(t: Test, host: RemoteHost, file: string, port: number): Promise<NbdServer> {
  const server = await spawnNbdServer(host, file, port)
  t.teardown(() => server.kill())
  return server
}

function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** A new namespace serving a fresh sparse file of `bytes` (created in `dir`) on port 10809. */
export async function remoteExport(t: Test, dir: string, bytes: number): Promise<{ host: RemoteHost, file: string,
  server: NbdServer }> {
  const host = makeRemoteHost(t)
  const file = join(dir, 'remote.img')
  writeFileSync(file, '')
  truncateSync(file, bytes)
  return { host, file, server: await startNbdServer(t, host, file, 10809) }
}
