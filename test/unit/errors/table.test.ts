// The shared error table: every code is documented with an anchor on one page of docs/errors/,
// no page names a code the table lacks, and every code builds a typed LvmfsError whose exit
// code, errno and domain come from its row.
import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import t from 'tap'
import { CODES, LvmfsError, errnoOf, type ErrorCode } from '../../../src/errors/index.js'

const dir = new URL('../../../docs/errors/', import.meta.url)
const pages = readdirSync(dir).filter((name) => name.endsWith('.md'))
  .map((name) => readFileSync(new URL(name, dir), 'utf8')).join('\n')
const anchors = (text: string): string[] => [...text.matchAll(/<a id="([A-Z0-9_]+)"><\/a>/g)].map((m) => m[1]!)
const documented = new Set(anchors(pages))
// Success statuses (a DLM grant's DLM_SUCCVALNOTVALID, ...) are results, not codes of the table.
const errorSections = pages.split(/^## /m).filter((section) => !/^[^\n]*success/i.test(section)).join('\n')

for (const code of Object.keys(CODES) as ErrorCode[]) {
  t.test(`${code} is documented and typed`, async (t) => {
    t.ok(documented.has(code), `docs/errors has an anchor for ${code}`)
    const spec = CODES[code]
    const error = new LvmfsError(code, 'something went wrong', { detail: 'd', hint: 'h' })
    t.equal(error.code, code)
    t.equal(error.exitCode, spec.exit)
    t.ok([3, 5].includes(error.exitCode), 'exit is 3 (usage) or 5 (failure)')
    t.equal(error.errno, constants.errno[spec.errno], 'errno from the table')
    t.equal(errnoOf(error), error.errno)
    t.equal(error.domain, spec.domain)
    t.match(error.message, new RegExp(`^${code}: `))
    t.ok(error instanceof LvmfsError)
  })
}

t.test('docs/errors names no unknown error code', async (t) => {
  t.same(anchors(errorSections).filter((code) => !(code in CODES)), [])
})

t.test('errnoOf() maps Node system errors and unknown values', async (t) => {
  t.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOSPC' })), constants.errno.ENOSPC)
  t.equal(errnoOf(new Error('plain')), constants.errno.EIO)
  t.equal(errnoOf('not an error'), constants.errno.EIO)
})

t.test('fromJSON() revives every code with its message, detail, hint and context', async (t) => {
  for (const code of Object.keys(CODES) as ErrorCode[]) {
    const sent = new LvmfsError(code, 'what went wrong', { detail: 'Which field.', hint: 'Do this.',
      context: { field: 'x' } })
    const back = LvmfsError.fromJSON(JSON.parse(JSON.stringify(sent)))
    t.equal(back.code, code)
    t.equal(back.message, sent.message, `${code}: the code prefix is not doubled`)
    t.same([back.detail, back.hint, back.context], ['Which field.', 'Do this.', { field: 'x' }])
  }
})

t.test('fromJSON() turns an unknown or missing code into ENGINE_PROTOCOL naming it', async (t) => {
  const unknown = LvmfsError.fromJSON({ code: 'NOT_A_CODE', message: 'NOT_A_CODE: boom' })
  t.equal(unknown.code, 'ENGINE_PROTOCOL')
  t.equal(unknown.context['peerCode'], 'NOT_A_CODE')
  t.match(unknown.message, /NOT_A_CODE/)
  t.equal(LvmfsError.fromJSON(null).code, 'ENGINE_PROTOCOL')
  t.equal(LvmfsError.fromJSON({ code: 'toString', message: 'x' }).code, 'ENGINE_PROTOCOL', 'no prototype keys')
})
