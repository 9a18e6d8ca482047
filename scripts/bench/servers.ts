/** Starts the FUSE servers compared by the benchmarks, each on its own mount point. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

export interface RunningServer {
  readonly file: string
  stop(): Promise<void>
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

async function waitForMount(mountpoint: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (mountsAt(mountpoint).length > 0) return
    if (exited(child)) throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} did not mount ${mountpoint}`)
}

async function start(command: string, args: string[], mountpoint: string, what: string,
  env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  mkdirSync(mountpoint, { recursive: true })
  const child = spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], env })
  try {
    await waitForMount(mountpoint, child, what)
  } catch (error) {
    // Not mounted (or exited): do not leave the server running, nor a half-made mount behind.
    if (!exited(child)) {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
    }
    if (mountsAt(mountpoint).length > 0) cleanupMountpoint(mountpoint, { force: true })
    throw error
  }
  return {
    file: join(mountpoint, 'lv0'),
    async stop() {
      child.kill('SIGTERM')
      await new Promise((resolve) => { if (exited(child)) resolve(null); else child.once('exit', resolve) })
      if (mountsAt(mountpoint).length > 0) cleanupMountpoint(mountpoint, { force: true })
    },
  }
}

export function startLvmfsPassthrough(backing: string, mountpoint: string): Promise<RunningServer> {
  return start(process.execPath, ['--import', 'tsx', 'scripts/passthrough.ts', backing, mountpoint, '32'],
    mountpoint, 'lvmfs passthrough')
}

/** The C libfuse3 single-file server, built here against Debian's libfuse3-dev. */
export function startLibfuse3(backing: string, mountpoint: string): Promise<RunningServer> {
  const binary = join(mkdtempSync(join(tmpdir(), 'fusefile-')), 'fusefile')
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/)
  execFileSync('gcc', ['-O2', '-o', binary, join(repoRoot, 'scripts/bench/fusefile.c'), ...flags])
  return start(binary, [backing, mountpoint, '--dio', '--bdirect', '--pdw', '--maxbg=128'],
    mountpoint, 'libfuse3 fusefile')
}

/** fuse-native (devDependency) with the libfuse.so.2 its fuse-shared-library-linux ships. */
export function startFuseNative(backing: string, mountpoint: string): Promise<RunningServer> {
  const libDir = mkdtempSync(join(tmpdir(), 'libfuse2-'))
  symlinkSync(join(repoRoot, 'node_modules/fuse-shared-library-linux/libfuse/lib/libfuse.so'),
    join(libDir, 'libfuse.so.2'))
  return start(process.execPath, ['scripts/bench/fuse-native-server.cjs', backing, mountpoint], mountpoint,
    'fuse-native', { ...process.env, LD_LIBRARY_PATH: libDir })
}
