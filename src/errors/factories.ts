/**
 * The errors every layer raises for bad input, built in one place so the same mistake reads
 * the same everywhere: which thing, which field, what was expected. Layer-specific failures
 * (corrupt on-disk fields, lock states, LSM return codes) stay with their codes' owners.
 */
import { LvmfsError } from './lvmfs-error.js'

/** A malformed request: a missing argument, a value out of range, a name breaking the rule. */
export function usageError(message: string, detail?: string, context?: Readonly<Record<string, unknown>>): LvmfsError {
  return new LvmfsError('ENGINE_USAGE', message, {
    ...(detail === undefined ? {} : { detail }), ...(context === undefined ? {} : { context }) })
}

/** A parameter a reference function rejects (LVM_INVALID_PARAM): names the field and the value. */
export function invalidParam(field: string, value: unknown, message: string, detail: string,
  context: Readonly<Record<string, unknown>> = {}): LvmfsError {
  return new LvmfsError('LVM_INVALID_PARAM', message, { detail, context: { field, value, ...context } })
}

/** No such LV, VG, PV or job. */
export function notFound(kind: string, name: string, where: string,
  context: Readonly<Record<string, unknown>> = {}): LvmfsError {
  return new LvmfsError('ENGINE_NOT_FOUND', `${kind} "${name}" not found in "${where}"`, { context })
}

/** A name already taken. */
export function alreadyExists(kind: string, name: string, where: string): LvmfsError {
  return new LvmfsError('ENGINE_EXISTS', `${kind} "${name}" already exists in "${where}"`, {
    context: { name, where } })
}
