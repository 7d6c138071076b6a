// How validation problems are put into words. One format everywhere, so a user can grep for a file
// or an object: `<origin>: <Kind> <namespace>/<name>: <field>: <what was wrong>`.
import type { z } from 'zod';
import { show } from './kinds/common.ts';

/** `spec.ports[0].port`, `metadata.labels["istio.io/use-waypoint"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** One issue in words, without its path. Missing fields read `required`. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined ? 'required' : `expected ${issue.expected}, got ${show(input)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(input)}`;
    case 'invalid_union':
      return `not a valid value, got ${show(input)}`;
    default:
      return issue.message;
  }
}

export interface FieldProblem {
  readonly field: string;
  readonly text: string;
}

const MAX_LISTED = 5;

/** The issues of one document as field problems, first ones only (one mistake often causes many). */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.slice(0, MAX_LISTED).map((issue) => ({
    field: formatPath(issue.path),
    text: describeIssue(issue),
  }));
}

export function joinProblems(problems: readonly FieldProblem[], total: number): string {
  const listed = problems.map((p) => (p.field ? `${p.field}: ${p.text}` : p.text)).join('; ');
  return total > problems.length ? `${listed}; and ${total - problems.length} more` : listed;
}
