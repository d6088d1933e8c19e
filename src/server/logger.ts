import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';

/**
 * Structured logs on stderr (stdout stays free for what the operator reads). Anything that could
 * carry a secret is redacted by path, as a second line of defence behind never logging secrets.
 */
export function createLogger(level: Config['logLevel']): Logger {
  return pino(
    {
      level,
      base: { service: 'keyway' },
      redact: {
        paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization', 'req.headers.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
