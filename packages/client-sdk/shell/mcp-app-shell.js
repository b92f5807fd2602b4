// The `ui://` shell's script, bundled with ext-apps' App at build time (scripts/shell.mjs) and
// inlined into the resource: it learns the tool result from the host over ext-apps' own
// client, offers the link in a new tab (through the host's `ui/open-link` when it has one),
// and shows the session's live UI in a nested frame beside it when the link points at an
// allowed origin and the gateway's `frame-ancestors` lets every frame above the view in.
import { App, PostMessageTransport } from '@modelcontextprotocol/ext-apps/app-with-deps'

/* global window, document, location, URL */

const LINK_META_KEY = 'mcp-gw/link'
// An isolated-mode link carries its credential in this parameter (@mcp-gw/protocol's SESSION_LINK_PARAM).
const SESSION_LINK_PARAM = 'mcpgw_link'
// A host that says it opens links but never answers: the link is shown after this long.
const OPEN_LINK_TIMEOUT_MS = 2000

const config = JSON.parse(document.getElementById('mcpgw-config').textContent)
const $ = (id) => document.getElementById(id)

const wildcardOf = (source) => /^(https?:)\/\/\*(\.[^:/]+)(?::(\d+))?$/.exec(source)
const matches = (url, source) => {
  const wildcard = wildcardOf(source)
  if (wildcard === null) return url.origin === source
  return url.protocol === wildcard[1] && url.hostname.endsWith(wildcard[2]) && url.port === (wildcard[3] || '')
}
const allowed = (link) => {
  let url
  try { url = new URL(link) } catch { return false }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false
  return config.origins.some((origin) => matches(url, origin))
}
// Whether the browser will show the page in a frame here: every frame above it (this view
// included) must be one of its frame-ancestors. Unknown policy: try.
const framable = (sources, link) => {
  if (!Array.isArray(sources)) return true
  const list = sources.map((s) => String(s).toLowerCase().replace(/\/$/, ''))
  // `*`: the gateway sends no policy, and any page holding the link may frame it.
  if (list.includes('*')) return true
  const page = new URL(link).origin
  // The view's own origin: window.origin (a srcdoc view's location says about:srcdoc, opaque).
  const ancestors = [window.origin].concat(Array.from(location.ancestorOrigins || []))
  return ancestors.every((origin) => {
    if (origin === 'null') return false
    const url = new URL(origin)
    return list.some((source) => source === "'self'" ? url.origin === page : source !== "'none'" && matches(url, source))
  })
}
const reveal = (url) => {
  const copy = $('copy')
  copy.value = url
  copy.hidden = false
  copy.select()
}
// The host's own policy may refuse the frame whatever frameDomains asked (a host that
// ignores them): said, and the link stays one click away.
const refused = () => {
  const frame = $('ui')
  if (frame.hidden) return
  frame.hidden = true
  frame.removeAttribute('src')
  $('status').textContent = config.title + ' opens in a new tab: this app does not let its views show other pages.'
  $('status').hidden = false
}
document.addEventListener('securitypolicyviolation', (event) => {
  if (event.effectiveDirective === 'frame-src' || event.effectiveDirective === 'child-src' || event.effectiveDirective === 'default-src') refused()
})

const app = new App({ name: config.title, version: '1' }, {}, { autoResize: false })

const show = (result) => {
  const link = result && result._meta && result._meta[LINK_META_KEY]
  const url = link && typeof link.url === 'string' ? link.url : null
  const status = $('status')
  if (url === null || !allowed(url)) {
    status.textContent = url === null ? 'No link in this result.' : 'This link points somewhere this view may not open.'
    return
  }
  const open = $('open')
  open.href = url
  open.onclick = (event) => {
    event.preventDefault()
    const tab = () => {
      const opened = window.open(url, '_blank')
      if (opened) { try { opened.opener = null } catch {} } else reveal(url)
    }
    if (!app.getHostCapabilities()?.openLinks) return tab()
    app.openLink({ url }, { timeout: OPEN_LINK_TIMEOUT_MS }).then((answer) => { if (answer && answer.isError) reveal(url) }, () => reveal(url))
  }
  $('bar').hidden = false
  if (!framable(link.frameAncestors, url)) {
    status.textContent = config.title + ' opens in a new tab: its gateway does not let this app show it here.'
    return
  }
  // A page framed inside an opaque view runs at an opaque origin too (sandboxing is inherited):
  // an isolated-mode session page, which its cookie authenticates, cannot work there.
  if (window.origin === 'null' && new URL(url).searchParams.has(SESSION_LINK_PARAM)) {
    status.textContent = config.title + ' opens in a new tab: this app\'s views cannot keep its session.'
    return
  }
  const frame = $('ui')
  frame.src = url
  frame.hidden = false
  status.hidden = true
}

app.ontoolresult = show
app.connect(new PostMessageTransport(window.parent, window.parent)).then(
  () => app.sendSizeChanged({ height: config.height }),
  () => { $('status').textContent = 'This app could not talk to its host.' }
)
