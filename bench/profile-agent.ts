// Preloaded into the waypoint by bench/profile.ts only (`node --import bench/profile-agent.ts`): on
// each SIGUSR2 it reads one command from BENCH_PROFILE_DIR/command, does it in-process through the
// inspector (so a profile covers exactly the measured window, not start-up) and prints one JSON line
// {"agent": COMMAND, ...} on stdout when done. Commands:
//   cpu-start INTERVAL_US | cpu-stop NAME     V8 CPU profile → DIR/NAME.cpuprofile
//   heap-start INTERVAL_B | heap-stop NAME    sampling heap profile (incl. objects GC collected) → DIR/NAME.heapprofile
//   snapshot NAME                             process.memoryUsage(), heap spaces, code stats → DIR/NAME.json
//   mark                                      answers {"t": µs}: the monotonic clock the CPU profile's timestamps use
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import v8 from 'node:v8';

const DIR = process.env.BENCH_PROFILE_DIR ?? '';
const session = new Session();
session.connect();

function memorySnapshot(): Record<string, unknown> {
  return {
    memoryUsage: process.memoryUsage(),
    heapSpaces: v8.getHeapSpaceStatistics(),
    heapStatistics: v8.getHeapStatistics(),
    codeStatistics: v8.getHeapCodeStatistics(),
    // internal/deps/amaro is type stripping's wasm: loaded only when a .ts file misses the compile cache.
    amaroLoaded: (process as unknown as { moduleLoadList: string[] }).moduleLoadList.some((m) =>
      m.includes('amaro'),
    ),
  };
}

async function run(command: string): Promise<Record<string, unknown>> {
  const [verb, arg = ''] = command.trim().split(/\s+/);
  switch (verb) {
    case 'cpu-start':
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: Number(arg) || 1000 });
      await session.post('Profiler.start');
      return {};
    case 'cpu-stop': {
      const { profile } = await session.post('Profiler.stop');
      await session.post('Profiler.disable');
      writeFileSync(join(DIR, `${arg}.cpuprofile`), JSON.stringify(profile));
      return { file: `${arg}.cpuprofile` };
    }
    case 'heap-start':
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: Number(arg) || 32_768,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      return {};
    case 'heap-stop': {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(join(DIR, `${arg}.heapprofile`), JSON.stringify(profile));
      return { file: `${arg}.heapprofile` };
    }
    case 'mark':
      // uv_hrtime and V8's TimeTicks both read CLOCK_MONOTONIC: the profile's samples line up with it.
      return { t: Number(process.hrtime.bigint() / 1000n) };
    case 'snapshot':
      writeFileSync(join(DIR, `${arg}.json`), JSON.stringify(memorySnapshot()));
      return { file: `${arg}.json` };
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}`);
  }
}

process.on('SIGUSR2', () => {
  let command = '';
  try {
    command = readFileSync(join(DIR, 'command'), 'utf8');
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ agent: '', error: (err as Error).message })}\n`);
    return;
  }
  run(command).then(
    (fields) => process.stdout.write(`${JSON.stringify({ agent: command, ...fields })}\n`),
    (err: Error) => process.stdout.write(`${JSON.stringify({ agent: command, error: err.message })}\n`),
  );
});
