// Watches one file through its directory, as config/source.ts does, so an editor's
// write-and-rename and a ConfigMap mount swapping its `..data` link are both seen. Every event in
// the directory counts (a ConfigMap swap never names the file itself): the callback is debounced
// and should compare what it reads with what it has.
import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface FileWatch {
  close(): void;
}

export function watchFile(path: string, onChange: () => void, debounceMs = 100): FileWatch {
  const dir = dirname(resolve(path));
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      arm();
      onChange();
    }, debounceMs);
  };
  const arm = (): void => {
    if (closed || watcher) return;
    try {
      const w = fsWatch(dir, { persistent: false }, schedule);
      w.on('error', () => {
        w.close();
        watcher = undefined;
        schedule();
      });
      watcher = w;
    } catch {
      // The directory is missing: the next event (none) or a later schedule() re-arms.
    }
  };
  arm();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
