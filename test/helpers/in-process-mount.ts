/**
 * In-process FUSE sessions for transport tests: a passthrough volume (native data path) with a
 * controllable gate policy, a log that records every line, and child-process I/O helpers (the
 * test process is the daemon, so its own threads must not touch the mount).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { PassthroughFileSystem } from '../../src/fuse/examples/passthrough-fs.js'
import { setFdFault } from '../../src/fuse/native-session.js'
import { FuseSession, type MountOptions, type VolumePolicy } from '../../src/fuse/session.js'
import { makeMountpoint } from './mount-child.js'
import { testTransport } from './transport.js'

export interface LogLine {
  readonly level: 'warn' | 'error'
  readonly object: Record<string, unknown>
  readonly message: string
}

export interface RecordingLog {
  readonly lines: LogLine[]
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

export function recordingLog(): RecordingLog {
  const lines: LogLine[] = []
  return {
    lines,
    warn(object, message) { lines.push({ level: 'warn', object: object as Record<string, unknown>, message }) },
    error(object, message) { lines.push({ level: 'error', object: object as Record<string, unknown>, message }) },
  }
}

export interface GatedVolume {
  readonly session: FuseSession
  readonly fs: PassthroughFileSystem
  readonly file: string
  readonly backing: string
  readonly dir: string
  readonly log: RecordingLog
}

/** A passthrough volume of `sizeBytes`, gated in `gateBytes` regions (all closed at first). */
export async function mountGatedVolume(t: Test, options: { sizeBytes: number; gateBytes: number;
  policy: (volume: () => GatedVolume) => VolumePolicy; mount?: Partial<MountOptions> }): Promise<GatedVolume> {
  const dir = t.testdir()
  const backing = join(dir, 'backing.img')
  writeFileSync(backing, Buffer.alloc(options.sizeBytes))
  const mountpoint = makeMountpoint(t)
  const fs = new PassthroughFileSystem({ backingPath: backing, name: 'vol' })
  const log = recordingLog()
  const holder: { volume?: GatedVolume } = {}
  const session = await FuseSession.mount(fs, { mountpoint, transport: testTransport(), threads: 4, log,
    policy: options.policy(() => holder.volume!), ...options.mount })
  const volume = { session, fs, file: join(mountpoint, 'vol'), backing, dir, log }
  holder.volume = volume
  t.teardown(async () => {
    setFdFault(fs.fd, 0)
    await session.unmount({ lazy: true }).catch(() => session.abort())
    fs.close()
  })
  session.mapVolume(fs.nodeid, { ...fs.volumeMap(), gateBytes: options.gateBytes })
  return volume
}

export interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stderr: string
}

/** dd writing `blocks` 4 KiB blocks of `byte` at block `seek` with O_DIRECT, as a child process. */
export function ddWrite(dir: string, file: string, seekBlocks: number, byte: number, blocks = 1):
  { child: ChildProcess; done: Promise<ChildResult> } {
  const source = join(dir, `pattern-${byte}`)
  writeFileSync(source, Buffer.alloc(4096 * blocks, byte))
  return run('dd', [`if=${source}`, `of=${file}`, 'bs=4096', `count=${blocks}`, `seek=${seekBlocks}`,
    'oflag=direct', 'conv=notrunc', 'status=none'])
}

export function run(command: string, args: string[]): { child: ChildProcess; done: Promise<ChildResult> } {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const done = new Promise<ChildResult>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, stderr }))
  })
  return { child, done }
}

/** Runs a command to completion (child process) and returns its stdout, or its error. */
export function capture(command: string, args: string[]):
  Promise<{ stdout: string; error?: Error & { stderr: string } }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve(error ? { stdout, error: Object.assign(new Error(error.message), { stderr }) } : { stdout })
    })
  })
}

/** Waits until process `pid` is blocked inside a FUSE request. */
export async function blockedInFuse(pid: number): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    let wchan = ''
    try { wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8') } catch { /* not yet */ }
    if (wchan.includes('fuse') || wchan.includes('request_wait_answer')) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`process ${pid} never blocked in a FUSE request`)
}

export async function until(what: string, condition: () => boolean, attempts = 1000): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`never: ${what}`)
}
