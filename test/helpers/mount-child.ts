/**
 * Starts and stops mount daemons as child processes for tests, and guarantees cleanup: the
 * child is killed and the mount point detached in teardown even when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'
import { unmountPath } from '../../src/fuse/native-session.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

export function fuseAvailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (/dev/fuse is root-only here)'
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse'
  return false
}

export interface MountedChild {
  readonly child: ChildProcess
  readonly mountpoint: string
  /** The JSON object of the child's ready line. */
  readonly ready: Record<string, unknown>
  stop(): Promise<void>
}

/** A fresh mount point outside tap's fixture directories, removed in teardown. */
export function makeMountpoint(t: Test): string {
  const mountpoint = mkdtempSync(join(tmpdir(), 'lvmfs-mnt-'))
  t.teardown(() => {
    forceDetach(mountpoint)
    try { rmSync(mountpoint, { recursive: true }) } catch { /* still busy: left for the hook to report */ }
  })
  return mountpoint
}

/** Runs `script` (which prints a line containing "ready" once mounted); stopped in teardown. */
export async function startChild(t: Test, script: string, args: string[], mountpoint: string):
  Promise<MountedChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await waitExit(child, 10_000)
    }
    forceDetach(mountpoint)
  }
  t.teardown(stop)
  const lines = createInterface({ input: child.stdout! })
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not become ready`)), 30_000)
    lines.on('line', (line) => {
      if (line.includes('"ready"')) { clearTimeout(timer); resolve(JSON.parse(line) as Record<string, unknown>) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited ${code}`)) })
  })
  return { child, mountpoint, stop, ready }
}

export async function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve() }, timeoutMs)
    child.once('exit', () => { clearTimeout(timer); resolve() })
  })
}

/** Detaches whatever is still mounted at `mountpoint` (dead or alive). */
export function forceDetach(mountpoint: string): void {
  try {
    cleanupMountpoint(mountpoint, { force: true })
  } catch {
    for (let i = 0; i < mountsAt(mountpoint).length; i++) unmountPath(mountpoint, true)
  }
}
