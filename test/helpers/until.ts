// Waiting for an event a test cannot subscribe to (a counter, a log line, a socket in another
// object): poll the condition itself. The deadline only bounds a failure; a passing run never
// waits it out, so a busy machine slows the test down instead of failing it.

/** Resolves once `check()` holds; throws naming `what` if it never does within `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`never happened within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
