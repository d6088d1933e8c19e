/**
 * A pino logger whose output a test reads: each line parsed, and as written (to look for what
 * must never be logged, such as keys).
 */
import pino from 'pino';

export interface CapturedLog<L> {
  readonly logger: pino.Logger;
  readonly lines: L[];
  readonly raw: string[];
}

export function capturingLogger<L = Record<string, unknown>>(level: pino.Level = 'debug'): CapturedLog<L> {
  const lines: L[] = [];
  const raw: string[] = [];
  const write = (chunk: string): void => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      raw.push(line);
      lines.push(JSON.parse(line) as L);
    }
  };
  return { logger: pino({ level }, { write }), lines, raw };
}
