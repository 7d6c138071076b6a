// A stand-in for a `run` worker process, forked by a Primary under test (src/workers/primary.test.ts):
// it speaks the worker's side of the IPC channel and nothing else. `--hang` never reports that it
// listens (a worker still starting: a SIGTERM kills it, as it would a real one); `--fail` exits 1
// first; otherwise it reports at once and exits 0 on SIGTERM, as a drained worker does.
const args = process.argv.slice(2);
if (args.includes('--fail')) {
  process.stderr.write('node-waypoint: cannot read the certificate /nowhere: ENOENT\n');
  process.exit(1);
}
if (!args.includes('--hang')) {
  process.on('SIGTERM', () => process.exit(0));
  const here = { ip: '127.46.0.2', port: 1 };
  process.send?.({
    t: 'note',
    method: 'started',
    arg: {
      pid: process.pid,
      gateway: 'shop/waypoint',
      identity: 'spiffe://x/ns/shop/sa/w',
      hbone: here,
      admin: here,
    },
  });
}
// Alive until signalled (the IPC channel keeps the process running).
process.on('disconnect', () => process.exit(0));
