import type { ErrorSpec } from './spec.js'

/**
 * Error conditions of chlwm / primrec (AIX/370 TCF low-water marks, domain lwm); see
 * docs/errors/lwm.md. The reference gives no numeric values, so none are recorded.
 *
 * Sites: site 1 is the primary copy (the async mirror source); site 2, 3, ... are the targets
 * in the order they were attached. The local site of `chlwm VG/LV` is the copy VG/LV names.
 */
export const LWM_CODES = {
  LWM_EPERM: { domain: 'lwm', exit: 5, errno: 'EPERM',
    meaning: 'chlwm: the caller is not the superuser (uid 0).' },
  LWM_EBADST: { domain: 'lwm', exit: 3, errno: 'EINVAL',
    meaning: 'chlwm: the site was 0 (sites are numbered from 1).' },
  LWM_ENOSTORE: { domain: 'lwm', exit: 5, errno: 'ENODEV',
    meaning: 'chlwm/primrec: the volume is not a replicated volume (not a copy of an ' +
      'asynchronous mirror), or its volume group is not online (not mounted).' },
  LWM_EINVAL: { domain: 'lwm', exit: 3, errno: 'EINVAL',
    meaning: 'chlwm: the replicated volume has no copy at that site (not mounted there, or not ' +
      'replicated there), or the mark is not a commit count.' },
  LWM_ESITEDN1: { domain: 'lwm', exit: 5, errno: 'EHOSTUNREACH',
    meaning: 'chlwm/primrec: the site cannot be accessed: the volume group holding its copy is ' +
      'not online.' },
  LWM_ESITEDN2: { domain: 'lwm', exit: 5, errno: 'EHOSTUNREACH',
    meaning: 'chlwm/primrec: the operation was terminated because a site failed during it (its ' +
      'volume group was forced off or a superblock write failed).' },
  LWM_GENERATION_CONFLICT: { domain: 'lwm', exit: 5, errno: 'EIO',
    meaning: 'lvmfs: both copies took writes while apart (their generation ids diverged from ' +
      'the common one), or the copies are unrelated; they are never merged automatically.' },
} as const satisfies Record<string, ErrorSpec>
