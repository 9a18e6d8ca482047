import type { Command } from 'commander'
import * as lockd from './lockd.js'
import * as locks from './locks.js'
import * as pvcreate from './pvcreate.js'
import * as vgcreate from './vgcreate.js'
import * as vgextend from './vgextend.js'
import * as vgreduce from './vgreduce.js'
import * as lvcreate from './lvcreate.js'
import * as lvextend from './lvextend.js'
import * as lvreduce from './lvreduce.js'
import * as lvremove from './lvremove.js'
import * as lvrename from './lvrename.js'
import * as lvchange from './lvchange.js'
import * as vgcfgbackup from './vgcfgbackup.js'
import * as vgcfgrestore from './vgcfgrestore.js'
import * as pvchange from './pvchange.js'
import * as pvremove from './pvremove.js'
import * as vgremove from './vgremove.js'
import * as vgrename from './vgrename.js'
import * as lvconvert from './lvconvert.js'
import * as thinCheck from './thin-check.js'
import * as pvmove from './pvmove.js'
import * as pvs from './pvs.js'
import * as vgs from './vgs.js'
import * as lvs from './lvs.js'
import * as pvdisplay from './pvdisplay.js'
import * as vgdisplay from './vgdisplay.js'
import * as lvdisplay from './lvdisplay.js'
import * as varyonvg from './varyonvg.js'
import * as varyoffvg from './varyoffvg.js'
import * as resync from './resync.js'
import * as syncvg from './syncvg.js'
import * as scrub from './scrub.js'
import * as cleanup from './cleanup.js'
import * as mount from './mount.js'
import * as umount from './umount.js'
import * as status from './status.js'
import * as fault from './fault.js'
import * as demo from './demo.js'
import * as replicate from './replicate.js'
import * as replica from './replica.js'
import * as chlwm from './chlwm.js'
import * as primrec from './primrec.js'
import * as job from './job.js'
import * as events from './events.js'

/**
 * Every CLI verb lives in its own module under commands/ and exports `register(program)`.
 * Add one line here per module.
 */
const modules: Array<{ register(program: Command): void }> = [
  pvcreate,
  vgcreate,
  vgextend,
  vgreduce,
  lvcreate,
  lvextend,
  lvreduce,
  lvremove,
  lvrename,
  lvchange,
  vgcfgbackup,
  vgcfgrestore,
  pvchange,
  pvremove,
  vgremove,
  vgrename,
  lvconvert,
  thinCheck,
  pvmove,
  pvs,
  vgs,
  lvs,
  pvdisplay,
  vgdisplay,
  lvdisplay,
  varyonvg,
  varyoffvg,
  resync,
  syncvg,
  scrub,
  lockd,
  locks,
  cleanup,
  mount,
  umount,
  status,
  fault,
  demo,
  replicate,
  replica,
  chlwm,
  primrec,
  job,
  events,
]

export function registerCommands(program: Command): void {
  for (const module of modules) module.register(program)
}
