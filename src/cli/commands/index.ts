import type { Command } from 'commander'
import * as lockd from './lockd.js'
import * as locks from './locks.js'

/**
 * Every CLI verb lives in its own module under commands/ and exports `register(program)`.
 * Add one line here per module.
 */
const modules: Array<{ register(program: Command): void }> = [
  lockd,
  locks,
]

export function registerCommands(program: Command): void {
  for (const module of modules) module.register(program)
}
