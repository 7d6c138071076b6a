// Structured logs: one JSON object a line on stderr, so stdout stays free for what a command prints
// for people (the demo's instructions, explain output) and for the access log.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** The level in force, shared with every child (the admin's /logging changes it at runtime). */
  level?(): LogLevel;
  setLevel?(level: LogLevel): void;
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l),
  base: Record<string, unknown> = {},
  shared: { level: LogLevel } = { level },
): Logger {
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] < ORDER[shared.level]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields })}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(shared.level, write, { ...base, ...fields }, shared),
    level: () => shared.level,
    setLevel: (l) => {
      shared.level = l;
    },
  };
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  if (value in ORDER) return value as LogLevel;
  throw new Error(`log level must be one of debug, info, warn, error (got ${JSON.stringify(value)})`);
}
