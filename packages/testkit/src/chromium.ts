import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

/** Debian's Chromium, or CHROMIUM_PATH: nothing here downloads a browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Headless Chromium with the flags this machine needs (no sandbox as root, no
 * background networking: the network is closed). The caller closes it. `extraArgs` adds switches, e.g. `--host-resolver-rules=MAP lan.test 127.0.0.1`
 * for a plain-http name that is not loopback to Chromium (no secure context, no Fetch Metadata)
 * while every socket stays on 127.0.0.1.
 */
export async function launchChromium (extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install the Debian package chromium (or set CHROMIUM_PATH)`)
  }
  return await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs]
  })
}
