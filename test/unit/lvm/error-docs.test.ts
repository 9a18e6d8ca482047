/**
 * The lvm error table and docs/errors/lvm.md agree: every code has a row with its ref, exit and
 * errno, and the page names no code the table lacks. Every code builds a typed error whose
 * exit code and errno come from the table.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { LvmfsError } from '../../../src/errors/index.js'
import { LVM_CODES } from '../../../src/errors/codes-lvm.js'

const page = readFileSync(new URL('../../../docs/errors/lvm.md', import.meta.url), 'utf8')

for (const [code, spec] of Object.entries(LVM_CODES)) {
  void t.test(`${code} is documented and typed`, async (t) => {
    const ref = (spec as { ref?: number }).ref
    t.match(page, `| <a id="${code}"></a>\`${code}\` | ${ref ?? '—'} | ${spec.exit} | ${spec.errno} |`)
    const error = new LvmfsError(code as keyof typeof LVM_CODES, 'x')
    t.equal(error.exitCode, spec.exit)
    t.equal(error.ref, ref)
    t.equal(error.domain, 'lvm')
    t.ok(error instanceof LvmfsError)
  })
}

void t.test('the page documents no unknown code', async (t) => {
  const documented = [...page.matchAll(/<a id="([A-Z_]+)"><\/a>/g)].map((m) => m[1]!)
  t.same(documented.filter((c) => !(c in LVM_CODES)), [])
  t.equal(documented.length, Object.keys(LVM_CODES).length)
})
