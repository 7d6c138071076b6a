// Shared by the bench's child processes: the parent passes one JSON argument; a child prints one
// JSON line {"ready": ...} on stdout once it listens, and exits when the parent closes its stdin
// (so a crashed or killed bench never leaves children behind) or on SIGTERM/SIGINT.

export function childConfig<T>(): T {
  const arg = process.argv[2];
  if (!arg) throw new Error(`${process.argv[1]}: expected one JSON argument`);
  return JSON.parse(arg) as T;
}

export function announceReady(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ...fields })}\n`);
}

/** Runs close() and exits when stdin ends or a signal arrives; a hard exit after 5 s either way. */
export function exitWithParent(close: () => Promise<unknown> | unknown): void {
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(0), 5_000).unref();
    Promise.resolve()
      .then(close)
      .finally(() => process.exit(0));
  };
  process.stdin.on('end', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}
