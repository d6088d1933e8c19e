/**
 * Retries `check` until it passes (the server records some facts asynchronously), or fails after
 * `timeoutMs` saying so, with the last failure's message. Every assertion in `check` needs a
 * message of its own: an `assert.ok` without one makes each failed attempt re-read the test's source.
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempts = 1; ; attempts++) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) {
        const last = e instanceof Error ? e.message : String(e);
        throw new Error(`eventually: still failing after ${timeoutMs} ms (${attempts} attempts): ${last}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
