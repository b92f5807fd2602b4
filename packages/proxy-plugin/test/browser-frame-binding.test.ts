import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import { startBackend, startIsolatedGateway } from './helpers.js'

/**
 * In Chromium, two views of one MCP Apps host (one partition, one cookie jar, one HTTP cache):
 * view A frames a session through its link; view X, another app, frames the same session host
 * without it. X gets the gateway's refusal, even for a page A's frame has just cached.
 */
t.test('another view in the same host cannot frame the session, not even a page the browser cached for the session\'s own frame', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    const url = req.url ?? ''
    if (url.startsWith('/cached')) {
      // A page any static file server could send: cacheable for ten minutes.
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=600' })
      res.end('<!doctype html><title>cached</title><p id="s">the user\'s page</p>')
      return
    }
    // The session's first page takes its frame to the cacheable one, as a user's click would.
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<!doctype html><title>home</title><p>home</p><script>location.href = "/cached"</script>')
  })
  let views: Record<string, string> = {}
  const viewServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(views[(req.headers.host ?? '').split(':')[0]!] ?? 'no view')
  })
  await new Promise<void>((resolve) => viewServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { viewServer.closeAllConnections(); viewServer.close(() => resolve()) }))
  const viewPort = (viewServer.address() as AddressInfo).port
  const gw = await startIsolatedGateway(t, { frameAncestors: [`http://host.localhost:${viewPort}`, `http://*.localhost:${viewPort}`] })
  const { link } = await gw.session(backend)
  const origin = new URL(link).origin
  views = {
    'host.localhost': `<!doctype html><iframe id="a" src="http://viewa.localhost:${viewPort}/"></iframe><iframe id="x" src="http://viewx.localhost:${viewPort}/"></iframe>`,
    'viewa.localhost': `<!doctype html><iframe src="${link}"></iframe>`,
    'viewx.localhost': '<!doctype html><p>another app</p>'
  }
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`http://host.localhost:${viewPort}/`)
  await eventually(async () => {
    const frame = page.frames().find((f) => f.url() === `${origin}/cached`)
    return frame !== undefined && await frame.textContent('#s').catch(() => null) === 'the user\'s page'
  }, { within: 10_000, what: 'view A showing the session\'s cacheable page' })

  const viewX = page.frames().find((f) => f.url().startsWith('http://viewx.localhost'))!
  await viewX.evaluate((o) => {
    for (const path of ['/cached', '/']) {
      const frame = document.createElement('iframe')
      frame.src = o + path
      document.body.append(frame)
    }
  }, origin)
  for (const path of ['/cached', '/']) {
    let text = ''
    await eventually(async () => {
      const frame = page.frames().find((f) => f.parentFrame() === viewX && f.url() === `${origin}${path}`)
      text = frame === undefined ? '' : await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '')
      return text !== ''
    }, { within: 10_000, what: `view X's frame of ${path} showing something` })
    t.match(text, /only through its link/, `${path}: the gateway's refusal, not the user's page`)
  }
})
