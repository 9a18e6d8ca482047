/**
 * A child process for broker tests. Commands (argv):
 *   hold-ex <resource> <valueHex> [persistent]  lock EX in rd "rd:vg1", write the value block,
 *                                               print "held", then wait to be killed
 *   collect                                     attach "rd:vg1", collect, print "collected <json>",
 *                                               then wait to be killed
 * With LVMFS_CHILD_WAIT_GO=1 the child connects and attaches, prints "ready", and waits for a
 * line on stdin before its command (so tests can start the next child while one round runs).
 */
import { DlmClient } from '../../src/dlm/client.js'
import { brokerCommand } from './dlm-broker.js'

const [command, resource, valueHex, flag] = process.argv.slice(2)
const client = await DlmClient.connect({ brokerCommand, label: `child ${command}` })
const rd = await client.attach('rd:vg1')
if (process.env['LVMFS_CHILD_WAIT_GO'] === '1') {
  process.stdout.write('ready\n')
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()))
}
if (command === 'hold-ex') {
  const lock = await client.lock(resource!, 'EX', { rd, persistent: flag === 'persistent' })
  await lock.convert('PW', { valueBlock: Buffer.from(valueHex!, 'hex') })
  await lock.convert('EX')
  process.stdout.write('held\n')
} else if (command === 'collect') {
  const collection = await client.collect(rd)
  process.stdout.write(`collected ${JSON.stringify(collection)}\n`)
}
setInterval(() => {}, 60_000)
