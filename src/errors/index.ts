export { CODES, type ErrorCode } from './codes.js'
export { LvmfsError, isLvmfsError, errnoOf, type ErrorOptions } from './lvmfs-error.js'
export { errnoNumber, type Domain, type ErrnoName, type ErrorSpec } from './spec.js'
export { alreadyExists, invalidParam, notFound, usageError } from './factories.js'
