// A small HTTP/1.1 load generator on raw sockets: keep-alive connections, one request in flight per
// connection (no pipelining), either at a constant arrival rate or closed loop (as fast as answers
// come back).
//
// Constant rate: connection i of C sends its k-th request at the scheduled time
//   t_start + (i / C) * T + k * T,   T = C / rate
// (each connection runs at rate / C, the connections staggered evenly across one period). When an
// answer arrives after the next slot has passed, the next request goes out at once, and its latency
// is still counted from its *scheduled* time, not from when it could be sent: a stall shows up in
// the latency of every request that should have been sent during it (coordinated-omission
// correction, as wrk2 does). The service time (from the actual send) and the send lag (actual send
// minus schedule, which includes the timer's own ~1 ms granularity) are recorded alongside.
// Node's timers count from the event loop's cached clock, so a send may also go out up to ~1 ms
// *before* its slot; latency is then counted from the send (never from later than the send).
//
// Bounded in time (warmup + duration, then at most drainMs for answers in flight) and in count
// (maxRequests measured requests). Latencies go into HDR histograms in microseconds.
import net from 'node:net';
import hdr from 'hdr-histogram-js';
import { ProtocolError, ResponseParser, requestBytes } from './http1.ts';

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Requests per second over all connections; 0 = closed loop (maximum rate). */
  readonly rate: number;
  /** The measured window, after the warmup. */
  readonly durationMs: number;
  /** Requests in this lead-in run on the same connections and schedule but are not recorded. */
  readonly warmupMs?: number;
  /** At most this many measured requests (default: rate * duration + connections, or 10 million closed loop). */
  readonly maxRequests?: number;
  readonly method?: string;
  readonly path?: string;
  /** Host header (default host:port). */
  readonly hostHeader?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** A request with no answer after this long fails and its connection is replaced (default 10 s). */
  readonly timeoutMs?: number;
  /** After the window, answers in flight get this long (default 5 s). */
  readonly drainMs?: number;
  readonly connectTimeoutMs?: number;
  /** Called at the start and end of the measured window (to sample other processes' counters). */
  readonly onPhase?: (phase: 'measure-start' | 'measure-end') => void;
  /** Keep a record of every request (tests). */
  readonly trace?: boolean;
}

export interface LatencySummary {
  /** Milliseconds. */
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly count: number;
}

export interface TraceEntry {
  readonly conn: number;
  readonly k: number;
  /** Milliseconds since the run started. */
  readonly scheduled: number;
  readonly sent: number;
  readonly done: number;
  readonly measured: boolean;
  readonly status: number;
}

export interface LoadResult {
  readonly mode: 'constant-rate' | 'closed-loop';
  readonly connections: number;
  readonly targetRate: number;
  /** Length of the measured window, seconds. */
  readonly windowSeconds: number;
  /** Measured requests answered (any status). */
  readonly completed: number;
  /** Answered with 2xx. */
  readonly ok: number;
  /** completed / windowSeconds. */
  readonly rps: number;
  readonly statuses: Readonly<Record<string, number>>;
  readonly errors: { readonly reset: number; readonly timeout: number; readonly protocol: number };
  readonly reconnects: number;
  /** The first failure seen, verbatim (a parse error quotes the bytes received). */
  readonly firstError?: string;
  /** Slots in the measured window never sent because the connection was still waiting (constant rate). */
  readonly unsent: number;
  readonly warmupRequests: number;
  /** From the scheduled send time (constant rate) or the send (closed loop). */
  readonly latency: LatencySummary;
  /** From the actual send. */
  readonly service: LatencySummary;
  /** Actual send minus scheduled send. */
  readonly sendLag: LatencySummary;
  /** The latency histogram (µs), HdrHistogram compressed base64. */
  readonly histogram: string;
  readonly trace?: TraceEntry[];
}

interface Inflight {
  readonly k: number;
  readonly scheduled: number;
  readonly sent: number;
  readonly measured: boolean;
}

interface Conn {
  readonly index: number;
  socket: net.Socket | undefined;
  readonly parser: ResponseParser;
  inflight: Inflight | undefined;
  /** Index of the next slot to send (constant rate) or requests sent so far (closed loop). */
  k: number;
  timer: NodeJS.Timeout | undefined;
  connecting: boolean;
  finished: boolean;
}

function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function summarize(h: ReturnType<typeof histogram>): LatencySummary {
  const ms = (us: number): number => us / 1000;
  if (h.totalCount === 0) return { min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 };
  return {
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    count: h.totalCount,
  };
}

/** Opens one TCP connection, resolving once it is up. */
function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(
      () => socket.destroy(new Error(`connect ${host}:${port}: timed out`)),
      timeoutMs,
    );
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (!(o.connections >= 1)) throw new Error('connections must be at least 1');
  if (!(o.durationMs > 0)) throw new Error('durationMs must be positive');
  const closedLoop = !(o.rate > 0);
  const C = o.connections;
  const period = closedLoop ? 0 : (C * 1000) / o.rate; // ms between a connection's slots
  const warmupMs = o.warmupMs ?? 0;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const drainMs = o.drainMs ?? 5_000;
  const maxRequests =
    o.maxRequests ?? (closedLoop ? 10_000_000 : Math.ceil((o.rate * o.durationMs) / 1000) + C);
  const request = requestBytes({
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    host: o.hostHeader ?? `${o.host}:${o.port}`,
    ...(o.headers ? { headers: o.headers } : {}),
    ...(o.body ? { body: o.body } : {}),
  });

  const corrected = histogram();
  const service = histogram();
  const lag = histogram();
  const statuses: Record<string, number> = {};
  const errors = { reset: 0, timeout: 0, protocol: 0 };
  let completed = 0;
  let ok = 0;
  let issued = 0; // measured requests sent
  let warmupRequests = 0;
  let reconnects = 0;
  let firstError: string | undefined;
  let lastMeasuredDone = 0;
  const trace: TraceEntry[] | undefined = o.trace ? [] : undefined;

  const conns: Conn[] = [];
  const sockets = await Promise.all(
    Array.from({ length: C }, () => connect(o.host, o.port, o.connectTimeoutMs ?? 5_000)),
  ).catch((err: Error) => {
    throw new Error(`load generator could not connect to ${o.host}:${o.port}: ${err.message}`);
  });

  const tStart = performance.now() + 1;
  const tMeasure = tStart + warmupMs;
  const tEnd = tMeasure + o.durationMs;
  // The window closes at tEnd; at constant rate, slots due before tEnd that a slow answer held up
  // still go out afterwards (their latency counts from the slot), until drainMs. Halted = no more
  // sends at all: closed loop at tEnd, the count bound, or the drain deadline.
  let windowClosed = false;
  let halted = false;
  let countBoundHit = false;
  let windowEnd = tEnd;

  let resolveIdle: (() => void) | undefined;
  const idle = new Promise<void>((r) => (resolveIdle = r));
  let resolveStopped: (() => void) | undefined;
  const stoppedSignal = new Promise<void>((r) => (resolveStopped = r));
  const checkIdle = (): void => {
    if (windowClosed && conns.every((c) => !c.inflight && (c.finished || halted))) resolveIdle?.();
  };

  const slot = (c: Conn, k: number): number => tStart + (c.index * period) / C + k * period;

  const isMeasured = (scheduled: number): boolean => scheduled >= tMeasure && scheduled < tEnd;

  const send = (c: Conn, scheduled: number): void => {
    const now = performance.now();
    const measured = isMeasured(closedLoop ? now : scheduled);
    if (measured) {
      if (issued >= maxRequests) {
        countBoundHit = true;
        stop();
        c.finished = true;
        return;
      }
      issued++;
    } else if (scheduled < tMeasure) warmupRequests++;
    c.inflight = { k: c.k, scheduled, sent: now, measured };
    c.k++;
    c.socket!.write(request);
  };

  const pump = (c: Conn): void => {
    if (c.inflight || c.connecting || c.finished || !c.socket) return;
    if (halted) {
      c.finished = true;
      return;
    }
    const now = performance.now();
    if (closedLoop) {
      if (now >= tEnd) {
        c.finished = true;
        return;
      }
      send(c, now);
      return;
    }
    const s = slot(c, c.k);
    if (s >= tEnd) {
      c.finished = true;
      return;
    }
    // A timer may fire up to ~2 ms before its slot by performance.now() (it counts whole ms from the
    // loop's cached clock); it sends anyway rather than wait another whole timer tick.
    if (s <= now + 0.05) send(c, s);
    else {
      c.timer = setTimeout(() => {
        c.timer = undefined;
        if (!c.inflight && !halted && c.socket && !c.connecting) send(c, s);
        else pump(c);
      }, s - now);
    }
  };

  const onResponse = (c: Conn, status: number, close: boolean): void => {
    const f = c.inflight!;
    c.inflight = undefined;
    const done = performance.now();
    if (f.measured) {
      completed++;
      if (status >= 200 && status < 300) ok++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      const from = Math.min(f.scheduled, f.sent);
      corrected.recordValue(Math.max(1, Math.round((done - from) * 1000)));
      // Closed loop: sent = scheduled, so service time = latency and there is no lag to record.
      if (!closedLoop) {
        service.recordValue(Math.max(1, Math.round((done - f.sent) * 1000)));
        lag.recordValue(Math.max(1, Math.round(Math.max(0, f.sent - f.scheduled) * 1000)));
      }
      lastMeasuredDone = done;
    }
    trace?.push({
      conn: c.index,
      k: f.k,
      scheduled: f.scheduled - tStart,
      sent: f.sent - tStart,
      done: done - tStart,
      measured: f.measured,
      status,
    });
    if (close) replace(c);
    else pump(c);
    checkIdle();
  };

  const fail = (c: Conn, kind: keyof typeof errors, why?: string): void => {
    const f = c.inflight;
    if (f?.measured && firstError === undefined) firstError = `${kind}: ${why ?? kind}`;
    c.inflight = undefined;
    if (f?.measured) errors[kind]++;
    replace(c);
    checkIdle();
  };

  const attach = (c: Conn, socket: net.Socket): void => {
    c.socket = socket;
    c.parser.reset();
    socket.on('data', (chunk: Buffer) => {
      if (c.socket !== socket) return;
      let r: ReturnType<ResponseParser['feed']>;
      try {
        r = c.parser.feed(chunk);
        if (r && !c.inflight) throw new ProtocolError('response without a request');
      } catch (err) {
        fail(c, 'protocol', (err as Error).message);
        return;
      }
      if (r) onResponse(c, r.status, r.close);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (c.socket !== socket) return;
      c.socket = undefined;
      if (c.inflight) {
        try {
          const r = c.parser.end();
          if (r) {
            onResponse(c, r.status, true);
            return;
          }
        } catch {}
        fail(c, 'reset', 'connection closed before the response was complete');
      } else replace(c);
    });
  };

  /** Drops the connection and opens another (unless the run is over); the schedule goes on. */
  const replace = (c: Conn): void => {
    const old = c.socket;
    c.socket = undefined;
    old?.destroy();
    if (halted || (closedLoop ? performance.now() >= tEnd : slot(c, c.k) >= tEnd)) {
      c.finished = true;
      return;
    }
    if (c.connecting) return;
    c.connecting = true;
    reconnects++;
    const attempt = (): void => {
      connect(o.host, o.port, o.connectTimeoutMs ?? 5_000).then(
        (s) => {
          c.connecting = false;
          if (halted) {
            s.destroy();
            c.finished = true;
            checkIdle();
            return;
          }
          attach(c, s);
          pump(c);
        },
        () => {
          if (halted || (closedLoop && performance.now() >= tEnd)) {
            c.connecting = false;
            c.finished = true;
            checkIdle();
            return;
          }
          setTimeout(attempt, 50);
        },
      );
    };
    attempt();
  };

  const stop = (): void => {
    if (windowClosed) {
      if (countBoundHit) halted = true;
      return;
    }
    windowClosed = true;
    windowEnd = countBoundHit ? performance.now() : tEnd;
    if (closedLoop || countBoundHit) {
      halted = true;
      for (const c of conns) {
        clearTimeout(c.timer);
        c.timer = undefined;
        if (!c.inflight) c.finished = true;
      }
    }
    o.onPhase?.('measure-end');
    resolveStopped?.();
    checkIdle();
  };

  for (let i = 0; i < C; i++) {
    const c: Conn = {
      index: i,
      socket: undefined,
      parser: new ResponseParser(),
      inflight: undefined,
      k: 0,
      timer: undefined,
      connecting: false,
      finished: false,
    };
    conns.push(c);
    attach(c, sockets[i]!);
  }

  // Phase markers and the per-request timeout watchdog.
  const measureTimer = setTimeout(
    () => o.onPhase?.('measure-start'),
    Math.max(0, tMeasure - performance.now()),
  );
  const endTimer = setTimeout(stop, Math.max(0, tEnd - performance.now()));
  const watchdog = setInterval(
    () => {
      const now = performance.now();
      for (const c of conns)
        if (c.inflight && now - c.inflight.sent > timeoutMs)
          fail(c, 'timeout', `no response in ${timeoutMs} ms`);
    },
    Math.min(250, timeoutMs / 4),
  );

  for (const c of conns) pump(c);
  await stoppedSignal;
  // Wait for the answers in flight, at most drainMs.
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([idle, new Promise<void>((r) => (drainTimer = setTimeout(r, drainMs)))]);
  clearTimeout(drainTimer);
  halted = true;
  clearTimeout(measureTimer);
  clearTimeout(endTimer);
  clearInterval(watchdog);
  for (const c of conns) {
    if (c.inflight?.measured) errors.timeout++;
    c.inflight = undefined;
    clearTimeout(c.timer);
    c.finished = true;
  }
  for (const c of conns) c.socket?.destroy();

  let unsent = 0;
  if (!closedLoop) {
    for (const c of conns) {
      // Slots in [tMeasure, windowEnd) at or after the next one this connection would have sent.
      for (let k = c.k; slot(c, k) < windowEnd; k++) if (slot(c, k) >= tMeasure) unsent++;
    }
    if (countBoundHit) unsent = 0;
  }
  if (countBoundHit && lastMeasuredDone > windowEnd) windowEnd = lastMeasuredDone;
  const windowSeconds = Math.max(1e-9, (windowEnd - tMeasure) / 1000);
  const result: LoadResult = {
    mode: closedLoop ? 'closed-loop' : 'constant-rate',
    connections: C,
    targetRate: closedLoop ? 0 : o.rate,
    windowSeconds,
    completed,
    ok,
    rps: completed / windowSeconds,
    statuses,
    errors,
    reconnects,
    ...(firstError !== undefined ? { firstError } : {}),
    unsent,
    warmupRequests,
    latency: summarize(corrected),
    service: summarize(closedLoop ? corrected : service),
    sendLag: summarize(lag),
    histogram: hdr.encodeIntoCompressedBase64(corrected),
    ...(trace ? { trace } : {}),
  };
  return result;
}
