/**
 * Child process for the kill -9 test: varies on the VG on the PV files given in argv and
 * creates LVs c0, c1, ... one commit at a time, printing "ack <n>" after each acknowledged
 * commit, until killed.
 */
import { varyOnVg } from '../../src/lvm/index.js'

const devices = process.argv.slice(2)
const result = await varyOnVg({ vgName: 'vg', devices })
if (result.vg === undefined) {
  process.stderr.write(`vary-on failed: ${result.rc}\n`)
  process.exit(1)
}
for (let n = 0; ; n++) {
  await result.vg.lvCreate({ name: `c${n}`, lpCount: 1 })
  process.stdout.write(`ack ${n}\n`)
}
