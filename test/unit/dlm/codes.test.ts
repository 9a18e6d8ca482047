/**
 * The dlm rows of the error table: every code builds an LvmfsError with its ref, exit and errno,
 * and has an anchor in docs/errors/dlm.md; every success status is documented too and is not an
 * error code (a status is not an error, style.md §6.3).
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { LvmfsError } from '../../../src/errors/index.js'
import { DLM_CODES, DLM_SUCCESS_STATUSES } from '../../../src/errors/codes-dlm.js'

const docs = readFileSync(new URL('../../../docs/errors/dlm.md', import.meta.url), 'utf8')

void t.test('every dlm code builds a typed error and is documented', async (t) => {
  for (const [code, spec] of Object.entries(DLM_CODES)) {
    const error = new LvmfsError(code as keyof typeof DLM_CODES, 'x')
    t.equal(error.code, code)
    t.equal(error.domain, 'dlm')
    t.equal(error.ref, 'ref' in spec ? spec.ref : undefined)
    t.equal(error.exitCode, spec.exit)
    t.ok(error.errno > 0, `${code} maps to errno ${spec.errno}`)
    t.ok(docs.includes(`id="${code}"`), `${code} documented`)
  }
  for (const status of Object.keys(DLM_SUCCESS_STATUSES)) {
    t.notOk(status in DLM_CODES, `${status} is not an error code`)
    t.ok(docs.includes(`id="${status}"`), `${status} documented`)
  }
  for (const required of ['DLM_BADPARAM', 'DLM_EALREADY', 'DLM_EFAULT', 'DLM_ENOSYS', 'DLM_IVRDID',
    'DLM_NO_GROUP', 'DLM_NOTATTACHED', 'DLM_NOTQUEUED', 'DLM_DEADLOCK', 'DLM_CANCEL', 'DLM_NOTGRANTED']) {
    t.ok(required in DLM_CODES, `${required} present`)
  }
  const refs = Object.values(DLM_CODES).flatMap((spec) => ('ref' in spec ? [spec.ref] : []))
  t.equal(new Set(refs).size, refs.length, 'reference numbers are unique')
})

void t.test('coverage table: every dlm code and status is asserted by some dlm test', async (t) => {
  const { readdirSync } = await import('node:fs')
  const dir = new URL('./', import.meta.url)
  const sources = readdirSync(dir).filter((name) => name.endsWith('.test.ts') && name !== 'codes.test.ts')
    .map((name) => readFileSync(new URL(name, dir), 'utf8')).join('\n')
  for (const code of [...Object.keys(DLM_CODES), ...Object.keys(DLM_SUCCESS_STATUSES)]) {
    t.ok(sources.includes(`'${code}'`), `${code} is provoked by a directed test`)
  }
})
