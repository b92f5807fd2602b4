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
local ipairs, pairs, type, tonumber = ipairs, pairs, type, tonumber
local find, sub, match, lower, gmatch = string.find, string.sub, string.match, string.lower, string.gmatch
local concat = table.concat

local edge = { open = {}, ended = {} }

-- The gateway's yeses, kept 1 s by each worker (to the millisecond; the gateway is told so by
-- X-Mcpgw-Edge-Cache-Ms and checks the session that much sooner, so revocation still bites
-- within 2 s). The key is everything an answer depends on, each value length-prefixed (no two
-- requests share a key); a request that repeats one of these headers is always asked about
-- (nginx's $http_ variables would see only the first). Cheaper than auth_request with
-- proxy_cache, which cost 23 µs of nginx CPU per request on a hit (bench workload 10).
local answers = lrucache.new(10000)
local KEYED = { "host", "cookie", "referer", "authorization", "origin", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "service-worker",
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
  mcpgw_cookie = "x-mcpgw-request-cookie", mcpgw_referer = "x-mcpgw-request-referer", mcpgw_authorization = "x-mcpgw-request-authorization"
}

-- The one value of the cookie `name` among `names` in a Cookie header, read as the gateway reads
-- it (split on `;`, names and values trimmed); nil when there is none, or more than one value
-- (the gateway tried each: which one it took is not guessed at).
local function one_cookie (header, names)
  if type(header) ~= "string" then return nil end
  local found
  for pair in gmatch(header, "[^;]+") do
    local name, value = match(pair, "^%s*(.-)%s*=%s*(.-)%s*$")
    if name ~= nil and value ~= "" and names[name] then
      if found ~= nil and found ~= value then return nil end
      found = value
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
  local upstream = vars.mcpgw_upstream or ""
  local host, port = match(upstream, "^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  if host == nil then host, port = match(upstream, "^(%[[%x:%.]+%]):(%d+)$") end
  local token = credential(vars.mcpgw_prefix, cookie)
  if host == nil or token == nil or vars.mcpgw_proto ~= "http" then return nil end
  return { vars = vars, host = host, port = tonumber(port), token = token }
end

-- The access phase of a location whose backend bytes nginx carries: the gateway's verdict (kept,
-- or asked through /_mcpgw_auth), set into nginx's variables. Anything but a usable yes, and a
-- session that ended, is handed to the gateway (@mcpgw), which answers as it would alone.
function edge.access ()
  local headers, truncated = ngx.req.get_headers(100)
  -- More headers than read: the key would not hold them all, so the gateway is asked.
  local key = truncated == nil and answer_key(headers) or nil
  local verdict = key and answers:get(key)
  if verdict == nil then
    local answer = ngx.location.capture("/_mcpgw_auth")
    -- A refusal or redirect: the gateway answers the request itself, as without nginx.
    if answer.status ~= 200 then return ngx.exec("@mcpgw") end
    verdict = verdict_of(answer.header, headers.cookie)
    if verdict == nil then return ngx.exec("@mcpgw") end
    if key then answers:set(key, verdict, 1) end
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

-- Event streams and long-polls nginx carries end when their session does: every 0.5 s the worker
-- asks the gateway which of the sessions it has open ended (POST /_mcpgw/forward-auth/ended:
-- the session cache, revalidated within 2 s). For init_worker_by_lua: `gateway` is the gateway's
-- IP address and port (a Lua socket resolves names only with a `resolver`), `key` the edge key.
function edge.start (gateway, key)
  local host, port = match(gateway, "^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  if host == nil then host, port = match(gateway, "^%[([%x:%.]+)%]:(%d+)$") end
  if host == nil then
    ngx.log(ngx.ERR, "mcp-gw: the gateway must be given as an IP address and a port (", gateway, "): streams will not end on revocation")
    return
  end
  port = tonumber(port)
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
      if token ~= nil and edge.ended[token] == nil then edge.ended[token] = { at = now, body = refusal } end
    end
    return true
  end
  local busy = false
  local function ask (premature)
    -- One question at a time: a slow gateway gets no pile of them.
    if premature or busy then return end
    busy = true
    local now = ngx.now()
    -- What ended and has nothing open any more is forgotten after a minute.
    for token, ended in pairs(edge.ended) do
      if edge.open[token] == nil and now - ended.at > 60 then edge.ended[token] = nil end
    end
    local batch = {}
    for token in pairs(edge.open) do
      if edge.ended[token] == nil then batch[#batch + 1] = token end
      if #batch == 1000 then
        if not ask_batch(batch, now) then break end
        batch = {}
      end
    end
    if #batch > 0 then ask_batch(batch, now) end
    busy = false
  end
  ngx.timer.every(0.5, ask)
end

return edge
