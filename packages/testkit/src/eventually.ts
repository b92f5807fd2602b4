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

/**
 * What `promise` gives, or a rejection naming `what` once `ms` have passed: how a
 * test waits on an event (a close, an answer) so that a hang fails in seconds.
 */
export async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}
