/** Run as an unprivileged user by broker.test.ts: prints the code of connecting to argv[2]. */
import { DlmClient } from '../../src/dlm/client.js'

try {
  const client = await DlmClient.connect({ socketPath: process.argv[2]!, startBroker: false })
  await client.close()
  process.stdout.write('connected\n')
} catch (error) {
  process.stdout.write(`${(error as { code?: string }).code ?? String(error)}\n`)
}
