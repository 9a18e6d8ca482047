import { Command, CommanderError } from 'commander'
import { readFileSync } from 'node:fs'
import { LvmfsError } from '../errors/index.js'
import { registerCommands } from './commands/index.js'
import { forwardedExitCode, installForwarding } from './forward.js'
import { stderr, stdout } from './io-context.js'

const packageJson = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string }

export function buildProgram(): Command {
  const program = new Command('lvmfs')
    .description('userspace logical volume manager and replicated volume engine, served through FUSE')
    .version(packageJson.version, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (text) => stdout().write(text), writeErr: (text) => stderr().write(text) })
  registerCommands(program)
  installForwarding(program)
  return program
}

/** Prints an error the way users of lvm2 expect and returns the exit code (3 usage, 5 failure). */
export function reportError(error: unknown, json: boolean): number {
  const forwarded = forwardedExitCode(error)
  if (forwarded !== undefined) return forwarded
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ||
        error.code === 'commander.help') return 0
    return 3
  }
  if (error instanceof LvmfsError) {
    if (json) stderr().write(JSON.stringify({ error: error.toJSON() }) + '\n')
    else {
      stderr().write(`lvmfs: ${error.message}\n`)
      if (error.detail) stderr().write(`  detail: ${error.detail}\n`)
      if (error.hint) stderr().write(`  hint: ${error.hint}\n`)
    }
    return error.exitCode
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  stderr().write(`lvmfs: internal error: ${message}\n`)
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
