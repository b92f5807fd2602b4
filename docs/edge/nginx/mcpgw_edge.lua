-- mcp-gw's pooled nginx edge: the Lua half of path-mode-pooled.conf and isolated-mode-pooled.conf
-- (one module, one copy of the policy both carry). Install it where `lua_package_path` points
-- ({{lua_dir}} in those files). Tested with Debian's nginx 1.22, libnginx-mod-http-lua 0.10.23,
-- lua-resty-core and lua-resty-lrucache by apps/gateway/test/edge-nginx.test.ts.
--
-- Each nginx worker holds its own copy of this table: the gateway's yeses it keeps, the sessions
-- of the requests it has open, and which of those ended.

local balancer = require("ngx.balancer")
local lrucache = require("resty.lrucache")

local ngx = ngx
local ipairs, pairs, type, tonumber, next = ipairs, pairs, type, tonumber, next
local find, sub, match, lower, gmatch, byte = string.find, string.sub, string.match, string.lower, string.gmatch, string.byte
local concat = table.concat
local band = require("bit").band
local semaphore = require("ngx.semaphore")

local edge = { open = {}, ended = {}, sockets = {} }

-- The gateway's yeses, kept 1 s by each worker (to the millisecond; the gateway is told so by
-- X-Mcpgw-Edge-Cache-Ms and checks the session that much sooner, so revocation still bites
-- within 2 s). The key is everything an answer depends on, each value length-prefixed (no two
-- requests share a key); a request that repeats one of these headers is always asked about
-- (nginx's $http_ variables would see only the first). Cheaper than auth_request with
-- proxy_cache, which cost 23 µs of nginx CPU per request on a hit (bench workload 10).
local answers = lrucache.new(10000)
local KEYED = { "host", "cookie", "referer", "authorization", "origin", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "service-worker",
  -- Over plain http a page load (swapped for a label, sent to log in) is known by these two.
  "accept", "upgrade-insecure-requests",
  -- A view session's GET with a method override is refused: its plain GET's yes must not serve it.
  "x-http-method-override", "x-http-method", "x-method-override" }

local function answer_key (headers)
  local method, uri = ngx.req.get_method(), ngx.var.request_uri
  local key = { #method, ":", method, #uri, ":", uri }
  for _, name in ipairs(KEYED) do
    local value = headers[name] or ""
    if type(value) ~= "string" then return nil end
    key[#key + 1] = #value
    key[#key + 1] = ":"
    key[#key + 1] = value
  end
  return concat(key)
end

-- What the request needs from a yes (the names nginx's variables are set from).
local VERDICT = {
  mcpgw_upstream = "x-mcpgw-upstream", mcpgw_proto = "x-mcpgw-upstream-proto", mcpgw_path = "x-mcpgw-upstream-path",
  mcpgw_prefix = "x-forwarded-prefix", mcpgw_user = "x-mcpgw-user-id", mcpgw_session = "x-mcpgw-session-id",
  mcpgw_type = "x-mcpgw-server-type", mcpgw_scopes = "x-mcpgw-scopes", mcpgw_instance = "x-mcpgw-instance-id",
  mcpgw_registrant = "x-mcpgw-registrant", mcpgw_registrant_rotation = "x-mcpgw-registrant-rotation", mcpgw_login_user = "x-mcpgw-login-user",
  mcpgw_cookie = "x-mcpgw-request-cookie", mcpgw_referer = "x-mcpgw-request-referer", mcpgw_authorization = "x-mcpgw-request-authorization",
  mcpgw_frame = "x-mcpgw-frame-ancestors"
}

-- The one value of the cookies `names` in a Cookie header, read exactly as the gateway reads it
-- (gatewayCookies: split on `;`, name and value trimmed of what JavaScript's trim() removes from
-- a header's latin-1 text, the no-break space 0xA0 among it; values of token characters only);
-- nil when there is none, or more than one value (the gateway tried each: which one let the
-- request in is not guessed at, and the gateway carries it).
local TRIM = "^[ \t\n\v\f\r\160]*(.-)[ \t\n\v\f\r\160]*$"
local function one_cookie (header, names)
  if type(header) ~= "string" then return nil end
  local found
  for pair in gmatch(header .. ";", "([^;]*);") do
    local eq = find(pair, "=", 1, true)
    if eq ~= nil and names[match(sub(pair, 1, eq - 1), TRIM)] then
      local value = match(sub(pair, eq + 1), TRIM)
      if value ~= "" and match(value, "^[%w_%-%.]+$") then
        if found ~= nil and found ~= value then return nil end
        found = value
      end
    end
  end
  return found
end

local LABEL_COOKIE = { mcpgw_s = true }
local HOST_COOKIE = { mcpgw_session = true, ["__Host-mcpgw"] = true }

-- The session token the request was let in with, which the worker asks the gateway about
-- while the request is open: the link's in path mode (the prefix ends with it), else the
-- gateway's cookie (a path-mode label, a session host).
local function credential (prefix, cookie)
  if prefix == nil then return one_cookie(cookie, HOST_COOKIE) end
  if sub(prefix, 1, 7) == "/mcp/s/" then return one_cookie(cookie, LABEL_COOKIE) end
  return match(prefix, "^/mcp/([^/]+)$")
end

-- An IP address and a port (IPv6 in brackets, as nginx's balancer and sockets take it); nil else.
local function parse_peer (upstream)
  local host, port = match(upstream, "^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  if host == nil then host, port = match(upstream, "^(%[[%x:%.]+%]):(%d+)$") end
  return host, tonumber(port)
end

-- The verdict: the variables to set, where to, and the session. Nil when the answer cannot be
-- used here: a header sent twice, a backend the pool does not take (a host name, https), or a
-- credential not told apart; the gateway carries those itself.
local function verdict_of (header, cookie)
  local vars = {}
  for var, name in pairs(VERDICT) do
    local value = header[name]
    if type(value) == "table" then return nil end
    -- Empty or absent: the variable keeps the "" it was set to (one write fewer per request).
    if value ~= nil and value ~= "" then vars[var] = value end
  end
  local host, port = parse_peer(vars.mcpgw_upstream or "")
  local token = credential(vars.mcpgw_prefix, cookie)
  local drop = header["x-mcpgw-request-drop"]
  if host == nil or token == nil or vars.mcpgw_proto ~= "http" or type(drop) == "table" then return nil end
  return { vars = vars, host = host, port = port, token = token, drop = drop }
end

-- What a client may not claim to a backend, as the gateway's own rule reads header names: the
-- gateway's headers (x-mcpgw-*), what front and identity-aware proxies tell a backend about the
-- user or the original request (x-forwarded-*, forwarded, x-real-ip, x-original-*,
-- x-rewrite-url, x-auth-request-*, remote-user, x-remote-user). nginx's proxy_set_header can only
-- name headers one by one; these go by prefix. (Names with `_` nginx drops itself.)
local SPOOFABLE = { forwarded = true, ["x-real-ip"] = true, ["x-rewrite-url"] = true, ["remote-user"] = true, ["x-remote-user"] = true }
local function spoofable (name)
  if SPOOFABLE[name] then return true end
  -- (Every prefix starts with `x-`: most headers are told apart by two bytes, no substring made.)
  if byte(name, 1) ~= 120 or byte(name, 2) ~= 45 then return false end
  return sub(name, 1, 8) == "x-mcpgw-" or sub(name, 1, 12) == "x-forwarded-" or sub(name, 1, 11) == "x-original-" or sub(name, 1, 15) == "x-auth-request-"
end

-- The access phase of a location whose backend bytes nginx carries: the gateway's verdict (kept,
-- or asked through /_mcpgw_auth), set into nginx's variables. Anything but a usable yes, and a
-- session that ended, is handed to the gateway (@mcpgw), which answers as it would alone.
function edge.access ()
  local headers, truncated = ngx.req.get_headers(100)
  local upgrade = headers.upgrade
  -- More headers than read: the key would not hold them all, so the gateway is asked. So is
  -- every upgrade (one per connection): its yes holds the gateway's Origin check, which a plain
  -- request's does not.
  local key = truncated == nil and upgrade == nil and answer_key(headers) or nil
  local verdict = key and answers:get(key)
  if verdict == nil then
    local answer = ngx.location.capture("/_mcpgw_auth")
    -- A refusal or redirect: the gateway answers the request itself, as without nginx.
    if answer.status ~= 200 then return ngx.exec("@mcpgw") end
    verdict = verdict_of(answer.header, headers.cookie)
    if verdict == nil then return ngx.exec("@mcpgw") end
    -- Kept only when the gateway says so (max-age): never a yes for a person (no-store), which
    -- rests on a login this key may not hold (an identity-aware proxy's header).
    local cache = answer.header["cache-control"]
    if key and type(cache) == "string" and find(cache, "max-age", 1, true) ~= nil then answers:set(key, verdict, 1) end
  end
  -- A session that ended since this worker kept its yes: the gateway gives the refusal.
  if edge.ended[verdict.token] ~= nil then return ngx.exec("@mcpgw") end
  local var = ngx.var
  for name, value in pairs(verdict.vars) do var[name] = value end
  local ctx = ngx.ctx
  ctx.mcpgw_host, ctx.mcpgw_port, ctx.mcpgw_token = verdict.host, verdict.port, verdict.token
  -- Open until the log phase (the server's, which also runs after a hand-over to the gateway).
  edge.open[verdict.token] = (edge.open[verdict.token] or 0) + 1
  var.mcpgw_counted = verdict.token
  -- What a client may not claim never reaches the backend (the location's proxy_set_header then
  -- sets the gateway's own values).
  for name in pairs(truncated == nil and headers or ngx.req.get_headers(0)) do
    if spoofable(name) then ngx.req.clear_header(name) end
  end
  -- Nor what the gateway names besides (an identity-aware proxy's login header: a credential).
  if verdict.drop ~= nil then
    for name in gmatch(verdict.drop, "[^,%s]+") do ngx.req.clear_header(name) end
  end
  -- A WebSocket: nginx carries its frames too (edge.websocket), and ends it on revocation. What
  -- the check could not see (it is asked without a body or Connection) is checked here: anything
  -- but a bodiless GET that asks for the upgrade goes to the gateway, which answers as alone.
  if upgrade ~= nil then
    local connection = headers.connection
    if truncated == nil and type(upgrade) == "string" and lower(upgrade) == "websocket" and ngx.req.get_method() == "GET"
      and headers["transfer-encoding"] == nil and (headers["content-length"] == nil or headers["content-length"] == "0")
      and type(connection) == "string" and find("," .. lower(connection) .. ",", ",[ \t]*upgrade[ \t]*,") ~= nil then
      return ngx.exec("@mcpgw_websocket")
    end
    return ngx.exec("@mcpgw")
  end
end

-- The balancer phase: the peer the access phase chose (an IP address and a port, over http).
-- Should nginx fail to use it, the location's error_page hands the request to the gateway.
function edge.balancer ()
  local ctx = ngx.ctx
  local ok, err = balancer.set_current_peer(ctx.mcpgw_host, ctx.mcpgw_port)
  if not ok then
    ngx.log(ngx.ERR, "mcp-gw: no peer: ", err)
    return ngx.exit(ngx.ERROR)
  end
end

-- The log phase: a request counted open is counted out at its end, in whichever location it
-- ended (nginx's variables, unlike ngx.ctx, outlive the hand-over to the gateway).
function edge.log ()
  local token = ngx.var.mcpgw_counted
  if token ~= nil and token ~= "" then
    local n = (edge.open[token] or 1) - 1
    edge.open[token] = n > 0 and n or nil
  end
end

-- A cookie of mcp-gw's own (`mcpgw_*`, `__Host-mcpgw*`), in any case, or behind a bare `=`
-- (a nameless cookie a browser would send back as that name): a backend never sets one.
local function own_cookie (cookie)
  local name = lower(match(cookie, "^[%s=]*([^=;]*)") or "")
  name = match(name, "^(.-)%s*$")
  return match(name, "^mcpgw_[%w_]*$") ~= nil or match(name, "^__host%-mcpgw[%w_]*$") ~= nil
end

-- A backend's cookie, its attributes read as a browser reads them (RFC 6265 5.2: split on `;`,
-- names trimmed of spaces and tabs and matched without case, the last Path counting): every
-- Domain removed; with `base` (path mode), every Path replaced by one under the session's prefix.
local function scope_cookie (cookie, base)
  local kept, path, from = {}, "/", 1
  while true do
    local semi = find(cookie, ";", from, true)
    local part = sub(cookie, from, (semi or 0) - 1)
    if from == 1 then
      kept[1] = part
    else
      local name, value = match(part, "^([^=]*)=?(.*)$")
      name = lower(match(name, "^[ \t]*(.-)[ \t]*$"))
      if name == "path" and base ~= nil then
        value = match(value, "^[ \t]*(.-)[ \t]*$")
        path = sub(value, 1, 1) == "/" and value or "/"
      elseif name ~= "domain" then
        kept[#kept + 1] = part
      end
    end
    if semi == nil then break end
    from = semi + 1
  end
  if base ~= nil then kept[#kept + 1] = " Path=" .. base .. path end
  return concat(kept, ";")
end

local REFUSAL_DROPS = { "Content-Length", "Content-Encoding", "Content-Range", "Content-Disposition", "Content-Language", "Content-Location", "ETag", "Last-Modified", "Set-Cookie", "Location", "Refresh", "Link" }

-- The header filter: a backend's cookies policed (`base`: the session's prefix in path mode,
-- nil on a session host), and the answer to a request whose session ended meanwhile replaced by
-- the gateway's refusal (a long-poll).
function edge.header_filter (base)
  local cookies = ngx.header["Set-Cookie"]
  if cookies ~= nil then
    if type(cookies) == "string" then cookies = { cookies } end
    local kept = {}
    for _, cookie in ipairs(cookies) do
      if not own_cookie(cookie) then kept[#kept + 1] = scope_cookie(cookie, base) end
    end
    ngx.header["Set-Cookie"] = kept
  end
  local ctx = ngx.ctx
  local token = ctx.mcpgw_token
  local ended = token and edge.ended[token]
  if ended then
    ctx.mcpgw_refusal = ended.body
    ngx.status = 401
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    for _, name in ipairs(REFUSAL_DROPS) do ngx.header[name] = nil end
  end
end

-- The body filter: the refusal's body instead of the backend's; a stream under way on a session
-- that ended sends nothing more.
function edge.body_filter ()
  local ctx = ngx.ctx
  if ctx.mcpgw_refusal then
    ngx.arg[1] = ctx.mcpgw_refusal
    ngx.arg[2] = true
    ctx.mcpgw_refusal = ""
    return
  end
  local token = ctx.mcpgw_token
  if token and edge.ended[token] then return ngx.ERROR end
end

-- WebSockets. nginx's own proxy cannot be told to close an upgraded connection it carries, so
-- the pooled edge carries a WebSocket's bytes itself, in Lua: the handshake as the gateway would
-- send it, then both directions piped as they come, until either side ends it or its session
-- does (the 0.5 s question above), when the browser gets the gateway's close (1008).

-- What a client's handshake may not carry to a backend: hop-by-hop headers, what the verdict
-- sets, and what a client may not claim (above).
local WS_DROPPED = {}
for _, name in ipairs({ "connection", "upgrade", "keep-alive", "proxy-connection", "te", "transfer-encoding", "trailer", "expect",
  "http2-settings", "content-length", "host", "cookie", "referer", "authorization" }) do WS_DROPPED[name] = true end
local function ws_dropped (name, listed)
  return WS_DROPPED[name] or listed[name] or spoofable(name)
end
-- What the backend is told, from the verdict (the names nginx's variables hold); empty: not sent.
local WS_SET = { { "X-Forwarded-Prefix", "mcpgw_prefix" }, { "X-Mcpgw-User-Id", "mcpgw_user" }, { "X-Mcpgw-Session-Id", "mcpgw_session" },
  { "X-Mcpgw-Server-Type", "mcpgw_type" }, { "X-Mcpgw-Scopes", "mcpgw_scopes" }, { "X-Mcpgw-Instance-Id", "mcpgw_instance" },
  { "X-Mcpgw-Registrant", "mcpgw_registrant" }, { "X-Mcpgw-Registrant-Rotation", "mcpgw_registrant_rotation" },
  { "X-Mcpgw-Login-User", "mcpgw_login_user" }, { "Cookie", "mcpgw_cookie" }, { "Referer", "mcpgw_referer" },
  { "Authorization", "mcpgw_authorization" }, { "X-Forwarded-For", "remote_addr" }, { "X-Forwarded-Proto", "scheme" },
  { "X-Forwarded-Host", "http_host" } }
-- What of the backend's 101 reaches the browser: the handshake's own headers, and its cookies, policed.
local WS_KEPT = { ["sec-websocket-accept"] = "Sec-WebSocket-Accept", ["sec-websocket-protocol"] = "Sec-WebSocket-Protocol",
  ["sec-websocket-extensions"] = "Sec-WebSocket-Extensions" }
local IDLE_MS = 3600000
-- The gateway's close for a session that ended: 1008, "session ended".
local CLOSE_ENDED = "\136\015\003\240session ended"

-- Where a stream of frames from the backend stands, so the close is sent between two frames,
-- never inside one: `need` payload bytes still to pass, `head` a frame header cut short.
local function advance (state, data)
  if state.head ~= "" then
    data = state.head .. data
    state.head = ""
  end
  local pos, n = 1, #data
  while pos <= n do
    if state.need > 0 then
      local take = state.need < n - pos + 1 and state.need or n - pos + 1
      state.need = state.need - take
      pos = pos + take
    else
      local b2 = byte(data, pos + 1)
      if b2 == nil then
        state.head = sub(data, pos)
        return
      end
      local len, size = band(b2, 127), 2
      if len == 126 then size = 4 elseif len == 127 then size = 10 end
      if band(b2, 128) ~= 0 then size = size + 4 end
      if pos + size - 1 > n then
        state.head = sub(data, pos)
        return
      end
      if len == 126 then
        local a, b = byte(data, pos + 2, pos + 3)
        len = a * 256 + b
      elseif len == 127 then
        len = 0
        for i = pos + 2, pos + 9 do len = len * 256 + byte(data, i) end
      end
      state.need = len
      pos = pos + size
    end
  end
end

-- The content phase of @mcpgw_websocket (after edge.access let the handshake in). A backend
-- nginx cannot reach, or that does not switch protocols, is handed to the gateway, which tries
-- it again and answers as it would alone.
function edge.websocket ()
  local var = ngx.var
  local token = var.mcpgw_counted
  local host, port = parse_peer(var.mcpgw_upstream)
  -- Not asking the gateway which sessions ended (named, not given by address): it carries them.
  if host == nil or token == "" or not edge.polling then return ngx.exec("@mcpgw") end
  local up = ngx.socket.tcp()
  up:settimeouts(5000, 60000, IDLE_MS)
  if not up:connect(host, port) then return ngx.exec("@mcpgw") end
  local headers = ngx.req.get_headers(100)
  local listed = {}
  for name in gmatch(lower(type(headers.connection) == "string" and headers.connection or ""), "[^,%s]+") do listed[name] = true end
  local out = { "GET ", var.mcpgw_path, " HTTP/1.1\r\nHost: ", var.mcpgw_upstream, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" }
  for name, value in pairs(headers) do
    if not ws_dropped(name, listed) then
      if type(value) == "table" then value = concat(value, ", ") end
      out[#out + 1] = name .. ": " .. value .. "\r\n"
    end
  end
  for _, set in ipairs(WS_SET) do
    local value = var[set[2]]
    if value ~= nil and value ~= "" then out[#out + 1] = set[1] .. ": " .. value .. "\r\n" end
  end
  out[#out + 1] = "\r\n"
  -- The backend's answer head: at most 16 KiB within 10 s (the gateway's own handshake bound).
  up:settimeouts(10000, 10000, 10000)
  local head = {}
  if up:send(concat(out)) then
    local reader, size = up:receiveuntil("\r\n\r\n"), 0
    while true do
      local data, err = reader(4096)
      if data == nil then
        if err ~= nil then head = nil end
        break
      end
      size = size + #data
      if size > 16384 then
        head = nil
        break
      end
      head[#head + 1] = data
    end
  else
    head = nil
  end
  local lines = head and concat(head)
  if lines == nil or match(lines, "^HTTP/1%.1 (%d+)") ~= "101" then
    -- Not switching protocols (or unreadable): the gateway asks it again and answers as alone.
    up:close()
    return ngx.exec("@mcpgw")
  end
  up:settimeouts(5000, 60000, IDLE_MS)
  local cookies, count = {}, 0
  for line in gmatch(sub(lines, (find(lines, "\r\n", 1, true) or #lines - 1) + 2) .. "\r\n", "(.-)\r\n") do
    count = count + 1
    -- More lines than a head has, or a control character (a bare CR or LF): not passed on.
    if count > 100 or find(line, "[%z\1-\8\10-\31\127]") ~= nil then
      up:close()
      return ngx.exit(502)
    end
    local name, value = match(line, "^([^:]+):[ \t]*(.-)[ \t]*$")
    name = name and lower(name)
    if WS_KEPT[name] then
      ngx.header[WS_KEPT[name]] = value
    elseif name == "set-cookie" and not own_cookie(value) then
      cookies[#cookies + 1] = scope_cookie(value, var.mcpgw_prefix ~= "" and var.mcpgw_prefix or nil)
    end
  end
  if #cookies > 0 then ngx.header["Set-Cookie"] = cookies end
  ngx.status = 101
  ngx.header["Upgrade"] = "websocket"
  ngx.header["Connection"] = "Upgrade"
  ngx.send_headers()
  ngx.flush(true)
  local down = ngx.req.socket(true)
  if not down then
    up:close()
    return ngx.exit(ngx.ERROR)
  end
  down:settimeouts(5000, 60000, IDLE_MS)

  -- Told when the session ends (the question every 0.5 s posts it).
  local ended = semaphore.new()
  local waiting = edge.sockets[token] or {}
  edge.sockets[token] = waiting
  waiting[ended] = true
  if edge.ended[token] ~= nil then ended:post(1) end

  local frames = { need = 0, head = "", reading = false }
  local function to_browser ()
    while true do
      frames.reading = true
      local data = up:receiveany(65536)
      frames.reading = false
      if data == nil then return end
      advance(frames, data)
      if not down:send(data) then return end
    end
  end
  local function to_backend ()
    while true do
      local data = down:receiveany(65536)
      if data == nil or not up:send(data) then return end
    end
  end
  local function watch ()
    return ended:wait(IDLE_MS / 1000 * 24)
  end
  local browser_bound = ngx.thread.spawn(to_browser)
  local backend_bound = ngx.thread.spawn(to_backend)
  local watcher = ngx.thread.spawn(watch)
  local _, revoked = ngx.thread.wait(browser_bound, backend_bound, watcher)
  -- The session ended: the gateway's close, if what the backend sends stands between two frames
  -- and nothing is being sent (else it just ends: 1006).
  local between = revoked == true and frames.reading and frames.need == 0 and frames.head == ""
  -- Whatever ended it, nothing more goes to the backend.
  up:close()
  ngx.thread.kill(browser_bound)
  -- (Sent while the browser's side is still being read: ending that read ends the socket.)
  if between then down:send(CLOSE_ENDED) end
  ngx.thread.kill(backend_bound)
  ngx.thread.kill(watcher)
  waiting[ended] = nil
  if next(waiting) == nil and edge.sockets[token] == waiting then edge.sockets[token] = nil end
  -- Revoked in the middle of sending to a browser that does not read: closed at once, not after
  -- nginx's send timeout.
  if revoked == true and not between then return ngx.exit(444) end
  return ngx.exit(ngx.OK)
end

-- Event streams, long-polls and WebSockets nginx carries end when their session does: every 0.5 s the worker
-- asks the gateway which of the sessions it has open ended (POST /_mcpgw/forward-auth/ended:
-- the session cache, revalidated within 2 s). For init_worker_by_lua: `gateway` is the gateway's
-- IP address and port (a Lua socket resolves names only with a `resolver`), `key` the edge key.
function edge.start (gateway, key)
  local host, port = parse_peer(gateway)
  if host == nil then
    ngx.log(ngx.ERR, "mcp-gw: the gateway must be given as an IP address and a port (", gateway, "): event streams will not end on revocation, and WebSockets go through the gateway")
    return
  end
  edge.polling = true
  -- One batch of at most 1000 tokens: the lines of the sessions in it that ended.
  local function ask_batch (tokens, now)
    local body = concat(tokens, "\n")
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 2000)
    local ok, err = sock:connect(host, port)
    if ok then
      ok, err = sock:send("POST /_mcpgw/forward-auth/ended HTTP/1.0\r\nHost: " .. gateway .. "\r\nX-Mcpgw-Forward-Auth-Key: " .. key
        .. "\r\nContent-Type: text/plain\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
    end
    local answer
    if ok then answer, err = sock:receive("*a") end
    sock:close()
    local status = answer and match(answer, "^HTTP/1%.%d (%d+)")
    if status ~= "200" then
      ngx.log(ngx.WARN, "mcp-gw: could not ask the gateway which sessions ended: ", err or ("status " .. tostring(status)))
      return false
    end
    for i, refusal in gmatch(match(answer, "\r\n\r\n(.*)$") or "", "(%d+) ([^\n]+)") do
      local token = tokens[tonumber(i) + 1]
      if token ~= nil and edge.ended[token] == nil then
        edge.ended[token] = { at = now, body = refusal }
        for ended in pairs(edge.sockets[token] or {}) do ended:post(1) end
      end
    end
    return true
  end
  local busy = false
  local function ask_all ()
    local now = ngx.now()
    -- What ended and has nothing open any more is forgotten after a minute.
    for token, ended in pairs(edge.ended) do
      if edge.open[token] == nil and now - ended.at > 60 then edge.ended[token] = nil end
    end
    local batch = {}
    for token in pairs(edge.open) do
      if edge.ended[token] == nil then batch[#batch + 1] = token end
      if #batch == 1000 then
        ask_batch(batch, now)
        batch = {}
      end
    end
    if #batch > 0 then ask_batch(batch, now) end
  end
  local function ask (premature)
    -- One question at a time: a slow gateway gets no pile of them.
    if premature or busy then return end
    busy = true
    local ok, err = pcall(ask_all)
    busy = false
    if not ok then ngx.log(ngx.ERR, "mcp-gw: asking which sessions ended failed: ", err) end
  end
  ngx.timer.every(0.5, ask)
end

return edge
