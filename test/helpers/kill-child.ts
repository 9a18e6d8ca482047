/**
 * Runs a TypeScript child process (the kill -9 tests' writer) and SIGKILLs it once a line of its
 * stdout satisfies `killAfter`, after a random extra delay that moves the kill to a random point
 * of the following writes. Resolves with the lines it printed. A child that never reaches its
 * kill point is killed after `guardMs` (never left running).
 */
import { spawn } from 'node:child_process'

export interface KillChildOptions {
  readonly script: string
  readonly args: readonly string[]
  readonly killAfter: (line: string) => boolean
  readonly random: () => number
  readonly delayMsMax: number
  readonly guardMs?: number
}

export async function runAndKill(options: KillChildOptions): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', options.script, ...options.args],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let stderr = ''
  let killing = false
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  let buffered = ''
  return await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        if (!killing && options.killAfter(line)) {
          killing = true
          setTimeout(() => child.kill('SIGKILL'), Math.floor(options.random() * options.delayMsMax))
        }
      }
    })
    const guard = setTimeout(() => child.kill('SIGKILL'), options.guardMs ?? 30_000)
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      if (signal === 'SIGKILL' || code === 0) resolve(lines)
      else reject(new Error(`child exited with ${code}: ${stderr}`))
    })
  })
}
