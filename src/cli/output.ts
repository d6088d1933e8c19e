/**
 * What the CLI prints: resources as YAML (as `gcloud … describe` does), lists as tables, or the
 * API's JSON with `--format json`. Status lines ("Created device [dev1].") go to stderr so that
 * stdout stays parseable.
 */
import type { CliIo } from './io.js';

export type OutputFormat = 'default' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['default', 'json', 'yaml'];

const PLAIN = /^[A-Za-z_./@(][^\n:#]*$/;
const AMBIGUOUS = /^(true|false|null|yes|no|on|off|~|[-+]?(\d|\.\d)[\d._eE+-]*)$/i;

function scalar(value: string): string {
  if (value !== '' && PLAIN.test(value) && !AMBIGUOUS.test(value) && value.trim() === value) return value;
  return `'${value.replace(/'/g, "''")}'`;
}

function isEmptyCollection(v: unknown): boolean {
  return (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
}

function inline(v: unknown): string | undefined {
  if (typeof v === 'string') return v.includes('\n') ? undefined : scalar(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (isEmptyCollection(v)) return '{}';
  return undefined;
}

function block(text: string, indent: string): string {
  const chomp = text.endsWith('\n') ? '|' : '|-';
  const body = text.replace(/\n$/, '').split('\n').map((l) => (l ? `${indent}${l}` : ''));
  return `${chomp}\n${body.join('\n')}`;
}

function lines(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      const one = inline(item);
      if (one !== undefined) return [`${indent}- ${one}`];
      if (typeof item === 'string') return [`${indent}- ${block(item, `${indent}  `)}`];
      const inner = lines(item, `${indent}  `);
      return [`${indent}- ${(inner[0] ?? '').trimStart()}`, ...inner.slice(1)];
    });
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => {
      if (v === undefined) return [];
      const key = scalar(k);
      const one = inline(v);
      if (one !== undefined) return [`${indent}${key}: ${one}`];
      if (typeof v === 'string') return [`${indent}${key}: ${block(v, `${indent}  `)}`];
      return [`${indent}${key}:`, ...lines(v, Array.isArray(v) ? indent : `${indent}  `)];
    });
  }
  return [`${indent}${inline(value) ?? ''}`];
}

/** A small YAML rendering: plain where unambiguous, quoted otherwise, PEM text as blocks. */
export function toYaml(value: unknown): string {
  return `${lines(value, '').join('\n')}\n`;
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string | undefined;
}

export function toTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => c.value(r) ?? ''))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return `${cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n')}\n`;
}

export class Printer {
  constructor(
    private readonly io: CliIo,
    readonly format: OutputFormat,
  ) {}

  /** One resource: YAML by default. */
  resource(value: unknown): void {
    this.io.stdout(this.format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value));
  }

  /** A list: a table by default, the items as JSON or YAML otherwise. */
  list<T>(rows: readonly T[], columns: readonly Column<T>[]): void {
    if (this.format === 'json') this.io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    else if (this.format === 'yaml') this.io.stdout(rows.map((r) => `---\n${toYaml(r)}`).join(''));
    else if (rows.length === 0) this.io.stderr('Listed 0 items.\n');
    else this.io.stdout(toTable(rows, columns));
  }

  /** A line for the person at the terminal. */
  status(text: string): void {
    this.io.stderr(`${text}\n`);
  }
}
