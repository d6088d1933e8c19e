/** Entry point of the `keyway` executable (bin/keyway.js imports the compiled form). */
import { run } from './run.js';
import { processIo } from './io.js';

process.exitCode = await run(process.argv.slice(2), processIo());
