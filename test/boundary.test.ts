// The engine/filter boundary (src/README.md): no engine module imports filters/, statically,
// dynamically or for types only; only the composition root (src/compose.ts and the CLI commands)
// does. And a filter reads another filter only through that filter's index.ts, except the pairs
// listed below. Imports are read with TypeScript's own parser, so comments and strings never count.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** The composition root: these engine-side files may import filters/. */
const COMPOSITION_ROOT = ['src/compose.ts', 'src/cli/'];

/** Every module specifier of a TypeScript source: import/export from, import(), import('x').T, require. */
function moduleSpecifiers(source: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node)) {
      const arg = node.arguments[0];
      const dynamic = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const required = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if ((dynamic || required) && arg) out.push(ts.isStringLiteralLike(arg) ? arg.text : '<computed>');
    } else if (ts.isImportTypeNode(node)) {
      const lit = ts.isLiteralTypeNode(node.argument) ? node.argument.literal : undefined;
      if (lit && ts.isStringLiteral(lit)) out.push(lit.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      if (ts.isStringLiteral(e)) out.push(e.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...tsFiles(path));
    else if (e.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Repository-relative targets of a file's relative imports; a computed import() counts as a target. */
function importsOf(file: string): string[] {
  return moduleSpecifiers(readFileSync(join(ROOT, file), 'utf8'), file)
    .filter((s) => s.startsWith('.') || s === '<computed>')
    .map((s) =>
      s === '<computed>'
        ? s
        : relative(ROOT, resolve(ROOT, dirname(file), s))
            .split(sep)
            .join('/'),
    );
}

/** `file -> target` for each import of `files` that `bad` says crosses the line. */
function violations(files: readonly string[], bad: (file: string, target: string) => boolean): string[] {
  return files.flatMap((f) => importsOf(f).flatMap((t) => (bad(f, t) ? [`${f} -> ${t}`] : [])));
}

const isRoot = (file: string) =>
  COMPOSITION_ROOT.some((r) => (r.endsWith('/') ? file.startsWith(r) : file === r));
const intoFilters = (target: string) => target === '<computed>' || target.startsWith('filters/');

describe('the engine/filter boundary', () => {
  it('finds static, dynamic, re-exported, type-only and require imports alike', () => {
    const src = `
      import { a } from '../filters/a.ts';
      import type { B } from '../filters/b.ts';
      export { c } from '../filters/c.ts';
      export * from '../filters/d.ts';
      const e = await import('../filters/e.ts');
      let f: import('../filters/f.ts').F;
      import g = require('../filters/g.ts');
      const h = require('../filters/h.ts');
      const i = await import(name);
      // import { no } from '../filters/comment.ts';
      const s = "import { no } from '../filters/string.ts'";
    `;
    expect(moduleSpecifiers(src)).toEqual([
      '../filters/a.ts',
      '../filters/b.ts',
      '../filters/c.ts',
      '../filters/d.ts',
      '../filters/e.ts',
      '../filters/f.ts',
      '../filters/g.ts',
      '../filters/h.ts',
      '<computed>',
    ]);
  });

  it('no engine module imports filters/ (only src/compose.ts and src/cli/ may)', () => {
    const engine = tsFiles('src').filter((f) => !isRoot(f));
    expect(engine.length).toBeGreaterThan(100);
    expect(violations(engine, (_f, t) => intoFilters(t))).toEqual([]);
  });

  it('a filter reads another filter only through its index.ts, the public surface', () => {
    const folder = (p: string) => p.split('/')[1];
    const filters = tsFiles('filters').filter((f) => f.split('/').length > 2);
    const crossing = violations(filters, (f, t) => {
      if (!t.startsWith('filters/') || t.split('/').length < 3) return false;
      return folder(t) !== folder(f) && !t.endsWith('/index.ts');
    });
    expect(crossing).toEqual([]);
  });
});
