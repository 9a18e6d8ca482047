/**
 * The compatibility matrix, all 36 pairs, against the table of domain.md §3 (copied here as text so
 * the test does not share data with the implementation), and the derived down-conversion relation.
 */
import t from 'tap'
import { LOCK_MODES, isDownConversion, modesCompatible, type LockMode } from '../../../src/dlm/index.js'

const TABLE = `
   NL CR CW PR PW EX
NL  1  1  1  1  1  1
CR  1  1  1  1  1  0
CW  1  1  1  0  0  0
PR  1  1  0  1  0  0
PW  1  1  0  0  0  0
EX  1  0  0  0  0  0`

const rows = TABLE.trim().split('\n').map((line) => line.trim().split(/\s+/))
const header = rows[0] as LockMode[]

void t.test('modesCompatible() matches the VMS/Linux matrix for all 36 pairs', async (t) => {
  let checked = 0
  for (const row of rows.slice(1)) {
    const granted = row[0] as LockMode
    for (const [index, requested] of header.entries()) {
      const expected = row[index + 1] === '1'
      t.equal(modesCompatible(granted, requested), expected, `${granted} granted, ${requested} requested`)
      t.equal(modesCompatible(requested, granted), expected, `symmetric ${requested}/${granted}`)
      checked++
    }
  }
  t.equal(checked, 36)
})

void t.test('isDownConversion() is exactly the conversions that cannot newly block anyone', async (t) => {
  const down = new Set([
    'NL>NL', 'CR>NL', 'CR>CR', 'CW>NL', 'CW>CR', 'CW>CW', 'PR>NL', 'PR>CR', 'PR>PR',
    'PW>NL', 'PW>CR', 'PW>CW', 'PW>PR', 'PW>PW',
    'EX>NL', 'EX>CR', 'EX>CW', 'EX>PR', 'EX>PW', 'EX>EX',
  ])
  for (const from of LOCK_MODES) {
    for (const to of LOCK_MODES) {
      t.equal(isDownConversion(from, to), down.has(`${from}>${to}`), `${from} -> ${to}`)
    }
  }
  t.notOk(isDownConversion('PR', 'CW'), 'PR -> CW is not down although CW ranks lower')
})
