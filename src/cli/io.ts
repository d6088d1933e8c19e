/** What the CLI touches of its process, so that tests can run it in-process. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Relative paths in flags resolve against this directory. */
  readonly cwd: string;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
  };
}

/** A mistake in how the command was called: exit status 2, like commander's own usage errors. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Something to fix before the command can work, told in one line: exit status 1. */
export class HintError extends Error {
  override readonly name = 'HintError';
}
