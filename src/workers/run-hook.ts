// What `run` calls to become N processes (src/cli/run.ts): with --concurrency 1 (or in a worker)
// nothing changes, the process is the waypoint; above 1 it becomes the primary and never builds a
// waypoint of its own.
import { checked } from '../cli/flags.ts';
import type { Logger } from '../observe/logger.ts';
import { parseConcurrency } from './concurrency.ts';
import type { Primary, PrimaryOptions } from './primary.ts';
import { WORKER_RESTART_ENV, workerIndex } from './worker-link.ts';

export { workerStarted } from './worker-link.ts';

/** Runs the primary until it has drained (its exit code), or undefined: this process is the waypoint. */
export async function runWorkersIfConcurrent(
  o: Omit<PrimaryOptions, 'concurrency'> & { readonly concurrency: string | undefined },
): Promise<number | undefined> {
  if (workerIndex(o.env) !== undefined) return undefined;
  const concurrency = checked('--concurrency', () => parseConcurrency(o.concurrency));
  if (concurrency === 1) return undefined;
  // Loaded only here: a single process (N = 1) and the workers never load the primary's code.
  const { Primary } = await import('./primary.ts');
  const primary = new Primary({ ...o, concurrency });
  // Handlers first: a SIGTERM right after "waypoint listening" must drain, not kill the primary.
  const stopped = untilStopped(primary, o.log);
  await primary.start();
  return stopped;
}

/**
 * What a worker's Waypoint needs: its HBONE listener shares the port (SO_REUSEPORT), and a restarted
 * worker (the replica already serves) binds it only once it can serve.
 */
export function workerWaypointOptions(env: NodeJS.ProcessEnv = process.env): {
  reusePort?: true;
  hboneAfterReady?: true;
} {
  if (workerIndex(env) === undefined) return {};
  return env[WORKER_RESTART_ENV] === '1' ? { reusePort: true, hboneAfterReady: true } : { reusePort: true };
}

/** SIGTERM or SIGINT: the coordinated drain, then its exit code; a second signal kills every worker. */
function untilStopped(primary: Primary, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.info('second signal: exiting now', { signal });
        for (const s of primary.slots) s.signal('SIGKILL');
        process.exit(1);
      }
      stopping = true;
      log.info('shutdown requested: draining every worker', { signal, workers: primary.slots.length });
      primary.stop().then(
        (clean) => {
          log.info(clean ? 'every worker drained' : 'a worker did not exit cleanly', { clean });
          resolve(clean ? 0 : 1);
        },
        () => resolve(1),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
