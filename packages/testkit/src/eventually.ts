/**
 * Polls `check` until it holds, or fails naming `what` once `within` ms have
 * passed: the way a test waits for something that happens elsewhere (another
 * process, a socket's far end), never a fixed sleep.
 */
export async function eventually (check: () => Promise<boolean> | boolean, options: { what: string, within?: number, everyMs?: number }): Promise<void> {
  const within = options.within ?? 5000
  const deadline = Date.now() + within
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${options.what}: did not happen within ${within} ms`)
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 20))
  }
}
