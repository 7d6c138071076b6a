// Reading manifests from disk: files and directories in, documents with an origin out. This layer
// knows YAML, JSON and Kubernetes List wrappers but nothing about kinds; a file that cannot be read
// or parsed is reported on its own so the store can keep what that file defined before.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import type { Origin } from './model.ts';

export interface LoadedDocument {
  /** `path`, `path#N` (N = 1-based document in a multi-document file), plus `.items[i]` for List items. */
  readonly origin: Origin;
  /** The file the document came from. */
  readonly file: string;
  /** The parsed document: normally a mapping, but not checked here. */
  readonly value: unknown;
}

export interface FileError {
  /** The file or the path given (a missing path, an unreadable directory). */
  readonly path: string;
  /** What went wrong, without the path. */
  readonly reason: string;
  /** 1-based, when the parser knows where. */
  readonly line?: number;
  readonly column?: number;
}

export interface LoadResult {
  /** Every non-empty document, in sorted file order, then document order. */
  readonly documents: readonly LoadedDocument[];
  readonly fileErrors: readonly FileError[];
  /** Files read successfully, sorted. */
  readonly files: readonly string[];
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Reads every manifest under paths. Directories are walked recursively for *.yaml, *.yml and *.json;
 * entries whose names start with `.` are skipped, which is what keeps a mounted ConfigMap's
 * `..data`/`..2024_...` copies from being read twice. Files named directly are read whatever their
 * extension. Never throws for file problems: they come back in `fileErrors`.
 */
export async function readManifests(paths: readonly string[]): Promise<LoadResult> {
  const fileErrors: FileError[] = [];
  const found = new Set<string>();
  // normalize, so `./demo` and `demo/x.yaml` name files the same way in origins and file errors.
  for (const p of paths) await collect(normalize(p), true, found, fileErrors, new Set());

  const documents: LoadedDocument[] = [];
  const files: string[] = [];
  for (const file of [...found].sort(byCodeUnit)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      fileErrors.push({ path: file, reason: `cannot read: ${errorText(err)}` });
      continue;
    }
    const parsed = extname(file).toLowerCase() === '.json' ? parseJson(file, text) : parseYaml(file, text);
    if ('error' in parsed) {
      fileErrors.push(parsed.error);
      continue;
    }
    files.push(file);
    documents.push(...parsed.documents);
  }
  fileErrors.sort((a, b) => byCodeUnit(a.path, b.path));
  return { documents, fileErrors, files };
}

async function collect(
  path: string,
  explicit: boolean,
  found: Set<string>,
  errors: FileError[],
  visitedDirs: Set<string>,
): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    // A dangling link inside a directory is not worth an error; a path the user named is.
    if (explicit) errors.push({ path, reason: missingOrUnreadable(err) });
    return;
  }
  if (info.isFile()) {
    if (explicit || EXTENSIONS.has(extname(path).toLowerCase())) found.add(path);
    return;
  }
  if (!info.isDirectory()) return;
  // Links can form loops; the real path identifies a directory.
  const real = await realpath(path).catch(() => path);
  if (visitedDirs.has(real)) return;
  visitedDirs.add(real);
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch (err) {
    errors.push({ path, reason: `cannot read directory: ${errorText(err)}` });
    return;
  }
  for (const name of entries.sort(byCodeUnit)) {
    if (name.startsWith('.')) continue;
    await collect(join(path, name), false, found, errors, visitedDirs);
  }
}

type Parsed = { documents: LoadedDocument[] } | { error: FileError };

function parseYaml(file: string, text: string): Parsed {
  const docs = parseAllDocuments(text);
  // An empty stream is not an array of documents.
  if (!Array.isArray(docs)) return { documents: [] };
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) return { error: yamlError(file, err) };
  }
  const multi = docs.length > 1;
  const documents: LoadedDocument[] = [];
  docs.forEach((doc, i) => {
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    documents.push(...expandList(multi ? `${file}#${i + 1}` : file, file, value));
  });
  return { documents };
}

function parseJson(file: string, text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8 names the place for most errors ("... at position 11 (line 3 column 1)"); when it does not,
    // the YAML parser (JSON is YAML) often can.
    const reason = errorText(err);
    const at = /^(.*?)(?: in JSON)? at position \d+ \(line (\d+) column (\d+)\)$/.exec(reason);
    if (at)
      return { error: { path: file, reason: at[1] ?? reason, line: Number(at[2]), column: Number(at[3]) } };
    const located = parseDocument(text).errors[0];
    return { error: located ? yamlError(file, located) : { path: file, reason } };
  }
  if (value === null) return { documents: [] };
  return { documents: expandList(file, file, value) };
}

/**
 * `kind: List` (kubectl) and typed lists (`ServiceList` from the API) become their items. Items of a
 * typed list may omit apiVersion and kind, as the API server writes them; they take the list's.
 */
function expandList(origin: Origin, file: string, value: unknown): LoadedDocument[] {
  if (!isRecord(value) || typeof value.kind !== 'string' || !value.kind.endsWith('List')) {
    return [{ origin, file, value }];
  }
  if (!Array.isArray(value.items)) return [{ origin, file, value }];
  const itemKind = value.kind === 'List' ? undefined : value.kind.slice(0, -'List'.length);
  const base = origin.includes('#') ? origin : `${origin}#1`;
  const out: LoadedDocument[] = [];
  value.items.forEach((item: unknown, i) => {
    if (item === null || item === undefined) return;
    let v = item;
    if (itemKind && isRecord(item) && item.kind === undefined) {
      v = { apiVersion: value.apiVersion, kind: itemKind, ...item };
    }
    out.push({ origin: `${base}.items[${i}]`, file, value: v });
  });
  return out;
}

interface YamlErrorLike {
  readonly message: string;
  readonly linePos?:
    | readonly [{ line: number; col: number }]
    | readonly [{ line: number; col: number }, unknown];
}

function yamlError(file: string, err: YamlErrorLike): FileError {
  // The parser's message repeats the position and appends a source excerpt; keep the first sentence.
  const first = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  const pos = err.linePos?.[0];
  return pos ? { path: file, reason: first, line: pos.line, column: pos.col } : { path: file, reason: first };
}

function missingOrUnreadable(err: unknown): string {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
    ? 'does not exist'
    : `cannot read: ${errorText(err)}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `path: line 3, column 5: reason`, the way file errors are shown to people. */
export function formatFileError(e: FileError): string {
  const where =
    e.line === undefined ? '' : `line ${e.line}${e.column === undefined ? '' : `, column ${e.column}`}: `;
  return `${e.path}: ${where}${e.reason}`;
}
