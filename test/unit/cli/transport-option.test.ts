/**
 * `lvmfs mount --transport`: bad values and an io_uring transport the kernel has off are usage
 * errors (exit 3) naming the option or the kernel parameter, before any device is touched.
 */
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { captureCli } from '../../helpers/mirror-cli-fixture.js'

const PARAMETER = '/sys/module/fuse/parameters/enable_uring'

t.test('--transport takes dev or uring', async (t) => {
  const result = await captureCli(['mount', 'novg', '/nonexistent', '--transport', 'ring'])
  t.equal(result.code, 3)
  t.match(result.stderr, /invalid --transport "ring"/)
})

const uringState = existsSync(PARAMETER) ? readFileSync(PARAMETER, 'utf8').trim() : 'missing'
t.test('--transport uring while fuse.enable_uring is off names the parameter and how to turn it on', {
  skip: uringState === 'Y' ? 'enable_uring is on here (the admin turned it on)' : false,
}, async (t) => {
  const result = await captureCli(['mount', 'novg', '/nonexistent', '--transport', 'uring'])
  t.equal(result.code, 3)
  if (uringState === 'missing') t.match(result.stderr, /no FUSE over io_uring/)
  else t.match(result.stderr, new RegExp(`enable_uring is ${uringState}[\\s\\S]*echo Y > ${PARAMETER}`))
})
