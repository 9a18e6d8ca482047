import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { parseJobId, type JobStatus } from '../../replication/index.js'
import { addDeviceOptions, print, table, type DeviceOptions } from '../lvm-cli.js'
import { progressBar } from '../mirror-cli.js'
import type { ResyncProgress } from '../../mirror/index.js'
import { allVgNames, withReplication } from './replication-common.js'

interface JobOptions extends DeviceOptions {
  readonly wait?: boolean
}

/** A job's percent as the progress bar's byte counts. */
export function percentProgress(percent: number): ResyncProgress {
  return { doneBytes: percent, totalBytes: 100, copiedBytes: percent, lv: '', lp: 0 }
}

function render(jobs: readonly JobStatus[]): string {
  if (jobs.length === 0) return 'no jobs\n'
  return table(['Job', 'Type', 'Volume', 'State', 'Percent'], jobs.map((job) =>
    [job.id, job.kind, `${job.volume.vg}/${job.volume.lv}`, job.state, `${job.percent}%`]))
}

/**
 * `lvmfs job [ID] [--wait] [--json]`: lsm_job_status_volume_get. State (INPROGRESS, COMPLETE,
 * ERROR) and percent of one job, or of every job in the scanned VGs. --wait runs (resumes) the
 * job in this process until it is no longer in progress, with a progress bar.
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('job').description('show (and wait for) replication jobs')
    .argument('[id]', 'job id, as printed by lvmfs replicate')
    .option('--wait', 'run the job to completion'))
    .action(async (id: string | undefined, options: JobOptions) => {
      if (id === undefined) {
        const jobs: JobStatus[] = []
        for (const vgName of await allVgNames(options)) {
          jobs.push(...await withReplication([vgName], options, (repl) => repl.jobs()))
        }
        print(options, jobs, render(jobs))
        return
      }
      const parsed = parseJobId(id)
      if (parsed === undefined) throw new LvmfsError('LSM_ERR_INVALID_ARGUMENT', `malformed job id "${id}"`, { hint: 'Example: vg0.7' })
      const status = await withReplication([parsed.vg], options, async (repl) => {
        if (options.wait !== true) return await repl.job(id)
        const bar = progressBar({ ...options, vgName: parsed.vg })
        try {
          return await repl.waitJob(id, (s) => bar.onProgress?.(percentProgress(s.percent)))
        } finally {
          bar.stop()
        }
      })
      print(options, status, render([status]))
      if (status.state === 'ERROR') {
        throw new LvmfsError('LSM_ERR_INVALID_ARGUMENT', `job ${id} failed: ${status.error ?? 'unknown error'}`)
      }
    })
}
