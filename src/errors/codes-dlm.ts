import type { ErrorSpec } from './spec.js'

/**
 * Codes of the dlm domain; see docs/errors/dlm.md. Names are the Tru64 DLM status names
 * (sys/dlm.h); `ref` is the Tru64 numeric value where a public source gives it (the comments of
 * Ingres `cxinfo.c` cx_translate_status, the source domain.md §6.3 cites). Codes without `ref`
 * are lvmfs additions for conditions the reference does not name.
 *
 * Success statuses (DLM_SUCCESS, DLM_SYNCH, DLM_SUCCVALNOTVALID, DLM_SYNCVALNOTVALID,
 * DLM_MORE_TO_RECOVER) are not errors: they are returned as result fields and listed in
 * DLM_SUCCESS_STATUSES below, never thrown.
 */
export const DLM_CODES = {
  DLM_ABORT: { domain: 'dlm', ref: 16, exit: 5, errno: 'ECANCELED',
    meaning: 'A waiting lock request was cancelled or unlocked before it was granted.' },
  DLM_ATTACHED: { domain: 'dlm', ref: 17, exit: 5, errno: 'EEXIST',
    meaning: 'The process has already joined this namespace, or already attached this recovery domain.' },
  DLM_BADPARAM: { domain: 'dlm', ref: 18, exit: 3, errno: 'EINVAL',
    meaning: 'A parameter is out of range: unknown lock mode, a recovery domain id that is not a ' +
      'positive integer, a nonzero reserved flag, or persistent without a recovery domain.' },
  DLM_CANCEL: { domain: 'dlm', ref: 19, exit: 5, errno: 'ECANCELED',
    meaning: 'A pending conversion was cancelled; the lock keeps its previously granted mode.' },
  DLM_CANCELGRANT: { domain: 'dlm', ref: 20, exit: 5, errno: 'EALREADY',
    meaning: 'Cancel found nothing pending: the request or conversion was already granted.' },
  DLM_CVTUNGRANT: { domain: 'dlm', ref: 22, exit: 5, errno: 'EINVAL',
    meaning: 'A conversion was asked for a lock that has not been granted yet.' },
  DLM_DEADLOCK: { domain: 'dlm', ref: 23, exit: 5, errno: 'EDEADLK',
    meaning: 'Queueing this conversion would deadlock: a conversion ahead of it waits for the mode ' +
      'this lock already holds. The lock keeps its granted mode.' },
  DLM_EFAULT: { domain: 'dlm', ref: 24, exit: 5, errno: 'EFAULT',
    meaning: 'A request message lacks its argument object or an output handle field, or is not ' +
      'decodable (the broker-protocol counterpart of a bad user pointer).' },
  DLM_ENOENT: { domain: 'dlm', ref: 25, exit: 5, errno: 'ENOENT',
    meaning: 'Leaving a namespace the process has not joined.' },
  DLM_ENOSYS: { domain: 'dlm', ref: 26, exit: 5, errno: 'ENOSYS',
    meaning: 'The lock manager is not enabled: it is shutting down, or the broker could not be reached ' +
      'nor started.' },
  DLM_HASLOCKS: { domain: 'dlm', ref: 27, exit: 5, errno: 'EBUSY',
    meaning: 'Leaving a namespace or detaching a recovery domain while the process still owns locks in it.' },
  DLM_INSFMEM: { domain: 'dlm', ref: 28, exit: 5, errno: 'ENOMEM',
    meaning: 'A bound was reached: too many locks, or too many requests queued on one resource.' },
  DLM_INTR: { domain: 'dlm', ref: 29, exit: 5, errno: 'EINTR',
    meaning: 'The connection to the broker was lost while the request was in flight; granted locks are ' +
      're-asserted on reconnect, requests in flight must be retried.' },
  DLM_IVBUFLEN: { domain: 'dlm', ref: 30, exit: 3, errno: 'EINVAL',
    meaning: 'A resource name is empty or longer than 255 bytes, or a value block is longer than 64 bytes.' },
  DLM_IVLOCKID: { domain: 'dlm', ref: 31, exit: 5, errno: 'EINVAL',
    meaning: 'No lock with this id is owned by the calling process.' },
  DLM_LKBUSY: { domain: 'dlm', ref: 32, exit: 5, errno: 'EBUSY',
    meaning: 'The lock already has a conversion pending; cancel it or wait for it first.' },
  DLM_NOACCESS: { domain: 'dlm', ref: 33, exit: 5, errno: 'EACCES',
    meaning: 'The broker socket refused the connection for lack of permission (it is root-only, 0600).' },
  DLM_NOTATTACHED: { domain: 'dlm', ref: 35, exit: 5, errno: 'ENOTCONN',
    meaning: 'The process has not joined the namespace (nsjoin) the call refers to.' },
  DLM_NOTQUEUED: { domain: 'dlm', ref: 36, exit: 5, errno: 'EAGAIN',
    meaning: 'A no-queue request or conversion could not be granted at once.' },
  DLM_RETRY: { domain: 'dlm', ref: 38, exit: 5, errno: 'EAGAIN',
    meaning: 'The broker restarted and is in its grace period: it grants nothing new until the clients ' +
      'it knew have re-asserted their locks or the grace period ends. Retry shortly.' },
  DLM_TIMEOUT: { domain: 'dlm', ref: 40, exit: 5, errno: 'ETIMEDOUT',
    meaning: 'A lock request was not granted within its timeout and was cancelled.' },
  DLM_TOOMANYNS: { domain: 'dlm', ref: 41, exit: 5, errno: 'EMFILE',
    meaning: 'The process has joined the maximum number of namespaces (64).' },
  DLM_NO_GROUP: { domain: 'dlm', ref: 46, exit: 5, errno: 'EPERM',
    meaning: 'The recovery domain id belongs to a process lock group the caller is not a member of.' },
  DLM_ENAMETOOLONG: { domain: 'dlm', ref: 47, exit: 3, errno: 'ENAMETOOLONG',
    meaning: 'A namespace, recovery domain or group name is empty or longer than 64 bytes.' },
  DLM_TOOMANYRD: { domain: 'dlm', ref: 48, exit: 5, errno: 'EMFILE',
    meaning: 'The process has attached the maximum number of recovery domains (256).' },
  DLM_IS_PR: { domain: 'dlm', ref: 49, exit: 5, errno: 'EINVAL',
    meaning: 'Locking a resource of a recovery domain without naming the recovery domain.' },
  DLM_NOT_PR: { domain: 'dlm', ref: 50, exit: 5, errno: 'EINVAL',
    meaning: 'Locking, within a recovery domain, a resource that exists outside any recovery domain.' },
  DLM_IVRDID: { domain: 'dlm', ref: 51, exit: 5, errno: 'EINVAL',
    meaning: 'No recovery domain attached by this process (or its group) has this id.' },
  DLM_PR_RD_MISMATCH: { domain: 'dlm', ref: 52, exit: 5, errno: 'EINVAL',
    meaning: 'Locking a resource of one recovery domain under another recovery domain.' },
  DLM_IVHNDL: { domain: 'dlm', ref: 53, exit: 5, errno: 'EINVAL',
    meaning: 'Validate was given a collection handle that is not the open collection of this process ' +
      'for this recovery domain (never collected, already validated, or given back).' },
  DLM_EALREADY: { domain: 'dlm', ref: 54, exit: 5, errno: 'EALREADY',
    meaning: 'The recovery domain has been collected and not yet validated; validate first.' },
  DLM_EINPROGRESS: { domain: 'dlm', ref: 55, exit: 5, errno: 'EINPROGRESS',
    meaning: 'Detaching a recovery domain while this process holds an unvalidated collection of it.' },
  DLM_NOTGRANTED: { domain: 'dlm', exit: 5, errno: 'EAGAIN',
    meaning: 'A lock re-asserted after a broker restart conflicts with a lock another client ' +
      're-asserted first; the lock is lost and the holder must assume it no longer owns the resource.' },
} as const satisfies Record<string, ErrorSpec>

export type DlmSuccessStatus = keyof typeof DLM_SUCCESS_STATUSES

/** Statuses that report success, possibly with a flag; returned in results, never thrown. */
export const DLM_SUCCESS_STATUSES = {
  DLM_SUCCESS: { meaning: 'The call succeeded.' },
  DLM_SYNCH: { meaning: 'The lock was granted at once, without queueing.' },
  DLM_SUCCVALNOTVALID: { ref: 2,
    meaning: 'The lock was granted after waiting, but the value block is marked not valid ' +
      '(valueBlockValid: false).' },
  DLM_SYNCVALNOTVALID: { ref: 3,
    meaning: 'The lock was granted at once, but the value block is marked not valid (valueBlockValid: false).' },
  DLM_MORE_TO_RECOVER: { ref: 4,
    meaning: 'Validate marked the collection valid, but more resources of the domain became invalid after ' +
      'the collect (or an attached member died): collect and validate again.' },
} as const satisfies Record<string, { ref?: number, meaning: string }>
