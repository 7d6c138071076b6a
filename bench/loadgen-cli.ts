// The load generator as a bench child process. One JSON argument:
//   {"kind": "load", ...LoadOptions without callbacks}   (body given as {"bodyBytes": N})
//   {"kind": "transfer", ...TransferOptions}
// Prints JSON lines on stdout: {"phase": "measure-start" | "measure-end"} as the measured window
// opens and closes (the parent samples the other processes then), and finally {"result": ...}.
import { childConfig } from './child.ts';
import { type LoadOptions, runLoad } from './loadgen.ts';
import { runTransfer, type TransferOptions } from './transfer.ts';

type Job =
  | ({ kind: 'load'; bodyBytes?: number } & Omit<LoadOptions, 'onPhase' | 'body'>)
  | ({ kind: 'transfer'; warmupBytes?: number } & TransferOptions);

const line = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const job = childConfig<Job>();
// Stop regardless after this long (every loop in the bench is bounded in time).
const hardLimitMs =
  job.kind === 'load'
    ? (job.warmupMs ?? 0) + job.durationMs + (job.drainMs ?? 5_000) + 30_000
    : (job.timeoutMs ?? 120_000) * 2 + 10_000;
setTimeout(() => {
  process.stderr.write(`load generator: hard time limit of ${hardLimitMs} ms reached\n`);
  process.exit(2);
}, hardLimitMs).unref();

try {
  if (job.kind === 'load') {
    const { kind: _kind, bodyBytes, ...opts } = job;
    const result = await runLoad({
      ...opts,
      ...(bodyBytes ? { body: Buffer.alloc(bodyBytes, 0x71) } : {}),
      onPhase: (phase) => line({ phase }),
    });
    line({ result });
  } else {
    const { kind: _kind, warmupBytes, ...opts } = job;
    // A short transfer on another connection first, so the JIT and the pooled sessions are warm.
    if (warmupBytes) await runTransfer({ ...opts, bytes: warmupBytes });
    line({ phase: 'measure-start' });
    const result = await runTransfer(opts);
    line({ phase: 'measure-end' });
    line({ result });
  }
  process.exit(0);
} catch (err) {
  line({ error: (err as Error).message });
  process.exit(1);
}
