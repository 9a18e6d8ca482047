/**
 * The bytes a thin pool lives on: its pool LV (through the mirror engine, so a mirrored pool
 * keeps every mirror guarantee) or, in tests, a file or memory. Offsets are pool LV bytes.
 */
export interface PoolDevice {
  readonly sizeBytes: number
  read(target: Uint8Array, offsetBytes: number): Promise<void>
  write(data: Uint8Array, offsetBytes: number): Promise<void>
  /** Every write acknowledged before the call is durable when it resolves (fsync). */
  flush(): Promise<void>
}
