import type { Command } from 'commander'

/**
 * Every CLI verb lives in its own module under commands/ and exports `register(program)`.
 * Add one line here per module.
 */
const modules: Array<{ register(program: Command): void }> = [
]

export function registerCommands(program: Command): void {
  for (const module of modules) module.register(program)
}
