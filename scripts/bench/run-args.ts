/** The options and the CLI runner the single-run device benchmarks (bench:blockdev, bench:transport) share. */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from './servers.js'

export interface RunArgs {
  readonly json: boolean
  readonly runtimeSeconds: number
  readonly sizeMb: number
  readonly sizeBytes: number
  readonly dir: string
}

/** `[--json] [--runtime S] [--size-mb N] [--dir DIR]`; exits 2 with the usage on bad values. */
export function parseRunArgs(script: string): RunArgs {
  const { values } = parseArgs({ options: {
    json: { type: 'boolean', default: false },
    runtime: { type: 'string', default: '10' },
    'size-mb': { type: 'string', default: '1024' },
    dir: { type: 'string', default: '/var/tmp' },
  } })
  const runtimeSeconds = Number(values.runtime)
  const sizeMb = Number(values['size-mb'])
  if (!Number.isInteger(runtimeSeconds) || runtimeSeconds < 1 || !Number.isInteger(sizeMb) || sizeMb < 64) {
    process.stderr.write(`usage: npm run ${script} -- [--json] [--runtime S >= 1] [--size-mb N >= 64] [--dir DIR]\n`)
    process.exit(2)
  }
  return { json: values.json, runtimeSeconds, sizeMb, sizeBytes: sizeMb * 2 ** 20, dir: values.dir }
}

/** Runs the lvmfs CLI from the checkout with `env`; its stdout, or throws with its stderr. */
export function lvmfsRunner(env: NodeJS.ProcessEnv): (args: string[]) => string {
  return (args) => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
      { cwd: repoRoot, env, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`lvmfs ${args.join(' ')}: ${result.stderr || `status ${result.status}`}`)
    return result.stdout
  }
}
