/**
 * `lvmfs locks [--json]` against a live broker: holders, waiters, orphans, value-block validity and
 * recovery-domain state appear; without a broker it says so. Runs the command module alone so the
 * test does not depend on other verbs or on a build.
 */
import { Command } from 'commander'
import t from 'tap'
import { register } from '../../../src/cli/commands/locks.js'
import { brokerFixture } from '../../helpers/dlm-broker.js'

async function run(args: string[]): Promise<string> {
  const program = new Command('lvmfs').exitOverride()
  register(program)
  const chunks: string[] = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk))
    return true
  }) as typeof process.stdout.write
  try {
    await program.parseAsync(args, { from: 'user' })
  } finally {
    process.stdout.write = write
  }
  return chunks.join('')
}

void t.test('lvmfs locks shows holders, waiters, value blocks and domains', async (t) => {
  const fixture = brokerFixture(t)
  const a = await fixture.connect({ label: 'mount-a' })
  const b = await fixture.connect()
  const rd = await a.attach('rd:vg1')
  const held = await a.lock('VG:1', 'EX', { rd })
  await held.convert('PW', { valueBlock: Uint8Array.from([0xab]) })
  const waiting = b.lock('VG:1', 'EX')
  waiting.catch(() => {})
  await b.describe()
  const text = await run(['locks', '--socket', fixture.socketPath])
  t.match(text, /namespace lvmfs/)
  t.match(text, /VG:1 \[rd:vg1\] value block valid ab/)
  t.match(text, /holds {3}PW \(pid \d+, lock \d+\)/)
  t.match(text, /recovery domain lvmfs\/rd:vg1: recovered, 1 attached/)
  const json = JSON.parse(await run(['locks', '--json', '--socket', fixture.socketPath])) as
    { running: boolean, resources: Array<{ name: string, holders: unknown[] }> }
  t.equal(json.running, true)
  t.equal(json.resources[0]?.name, 'VG:1')
  const none = await run(['locks', '--socket', `${fixture.socketPath}.none`])
  t.match(none, /no lock broker running/)
  await held.unlock()
  await waiting.then((lock) => lock.unlock(), () => {})
})
