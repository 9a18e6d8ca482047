import type { Command } from 'commander'
import { socketPathFromEnv, describeBroker, type LockView, type ManagerSnapshot } from '../../dlm/index.js'

function renderLock(lock: LockView): string {
  const who = lock.owner === null ? 'orphan' : `pid ${lock.pid ?? '?'}`
  const mode = lock.requestedMode === null ? (lock.grantedMode ?? '-')
    : `${lock.grantedMode ?? '-'}->${lock.requestedMode}`
  return `${mode} (${who}, lock ${lock.lockId}${lock.persistent ? ', persistent' : ''})`
}

function render(snapshot: ManagerSnapshot): string {
  const lines: string[] = []
  lines.push(`clients: ${snapshot.clients.length}${snapshot.grace ? ' (broker in restart grace period)' : ''}`)
  for (const client of snapshot.clients) {
    lines.push(`  pid ${client.pid}${client.label ? ` ${client.label}` : ''}: ${client.namespaces.join(', ')}`)
  }
  const namespaces = [...new Set(snapshot.resources.map((r) => r.namespace))].sort()
  for (const namespace of namespaces) {
    lines.push(`namespace ${namespace}`)
    for (const resource of snapshot.resources.filter((r) => r.namespace === namespace)) {
      const domain = resource.domain === null ? '' : ` [${resource.domain}]`
      const valid = resource.valueBlockValid ? 'valid' : 'NOT VALID'
      lines.push(`  ${resource.name}${domain} value block ${valid} ${resource.valueBlockHex || '(empty)'}`)
      for (const lock of resource.holders) lines.push(`    holds   ${renderLock(lock)}`)
      for (const lock of resource.converting) lines.push(`    converts ${renderLock(lock)}`)
      for (const lock of resource.waiting) lines.push(`    waits   ${renderLock(lock)}`)
    }
  }
  for (const domain of snapshot.domains) {
    const collection = domain.collection === null ? ''
      : `, collection ${domain.collection.handle} [${domain.collection.resources.join(', ')}]`
    lines.push(`recovery domain ${domain.namespace}/${domain.name}: ${domain.state}, ` +
      `${domain.attachedRdIds.length} attached${collection}`)
  }
  return lines.join('\n') + '\n'
}

/** `lvmfs locks [--json]`: what the lock broker holds, waits for and recovers. */
export function register(program: Command): void {
  program.command('locks')
    .description('list namespaces, resources, holders, waiters, value blocks and recovery domains')
    .option('--json', 'print JSON')
    .option('--socket <path>', 'broker socket (default $LVMFS_LOCKD_SOCKET or /run/lvmfs/lockd.sock)')
    .action(async (options: { json?: boolean, socket?: string }) => {
      const socketPath = options.socket ?? socketPathFromEnv()
      const snapshot = await describeBroker(socketPath)
      if (options.json === true) {
        process.stdout.write(JSON.stringify({ socket: socketPath, running: snapshot !== null, ...snapshot }) + '\n')
      } else if (snapshot === null) {
        process.stdout.write(`no lock broker running on ${socketPath}\n`)
      } else {
        process.stdout.write(render(snapshot))
      }
    })
}
