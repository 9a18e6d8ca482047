import { Command, CommanderError } from 'commander'
import { readFileSync } from 'node:fs'
import { LvmfsError } from '../errors/index.js'
import { registerCommands } from './commands/index.js'

const packageJson = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string }

export function buildProgram(): Command {
  const program = new Command('lvmfs')
    .description('userspace logical volume manager and replicated volume engine, served through FUSE')
    .version(packageJson.version, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
  registerCommands(program)
  return program
}

/** Prints an error the way users of lvm2 expect and returns the exit code (3 usage, 5 failure). */
export function reportError(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ||
        error.code === 'commander.help') return 0
    return 3
  }
  if (error instanceof LvmfsError) {
    if (json) process.stderr.write(JSON.stringify({ error: error.toJSON() }) + '\n')
    else {
      process.stderr.write(`lvmfs: ${error.message}\n`)
      if (error.detail) process.stderr.write(`  detail: ${error.detail}\n`)
      if (error.hint) process.stderr.write(`  hint: ${error.hint}\n`)
    }
    return error.exitCode
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  process.stderr.write(`lvmfs: internal error: ${message}\n`)
  return 5
}

export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram()
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (error) {
    return reportError(error, argv.includes('--json'))
  }
}
