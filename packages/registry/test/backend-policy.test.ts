import t from 'tap'
import { canonicalHost, createBackendPolicy, parseLooseIPv4 } from '../src/backend-policy.js'
import { MemoryStore } from '../src/memory-store.js'
import { Registry } from '../src/registry.js'
import { SECRET } from './helpers.js'

const code = 'MCPGW_REGISTRY_BACKEND_NOT_ALLOWED'

t.test('IPv4 is read the way getaddrinfo reads it', async (t) => {
  for (const spelling of ['169.254.169.254', '2852039166', '0xA9FEA9FE', '0xa9.0xfe.0xa9.0xfe', '0251.0376.0251.0376', '169.254.43518', '169.16689662', '0251.0xfe.43518']) {
    t.equal(parseLooseIPv4(spelling), '169.254.169.254', spelling)
  }
  t.equal(parseLooseIPv4('127.1'), '127.0.0.1')
  t.equal(parseLooseIPv4('0'), '0.0.0.0')
  for (const notIp of ['256.1.1.1', '1.2.3.4.5', '08.1.1.1', 'todo.internal', '', '4294967296', '1..1']) {
    t.equal(parseLooseIPv4(notIp), null, notIp)
  }
})

t.test('IPv6 forms are canonical, and IPv4-mapped ones become IPv4', async (t) => {
  t.same(canonicalHost('::ffff:169.254.169.254'), { host: '169.254.169.254', kind: 'ipv4' })
  t.same(canonicalHost('::ffff:a9fe:a9fe'), { host: '169.254.169.254', kind: 'ipv4' })
  t.same(canonicalHost('[::FFFF:A9FE:A9FE]'), { host: '169.254.169.254', kind: 'ipv4' })
  t.same(canonicalHost('0:0:0:0:0:ffff:7f00:1'), { host: '127.0.0.1', kind: 'ipv4' })
  t.same(canonicalHost('FE80:0:0:0:0:0:0:1'), { host: 'fe80::1', kind: 'ipv6' })
  t.same(canonicalHost('Todo.Internal.'), { host: 'todo.internal', kind: 'name' })
})

t.test('cloud metadata and link-local are refused in every notation, whatever is allowed', async (t) => {
  const policy = createBackendPolicy(['*', '0.0.0.0/0', '::/0'])
  const metadata = [
    '169.254.169.254', '2852039166', '0xA9FEA9FE', '0xa9fea9fe', '0251.0376.0251.0376', '169.254.43518', '169.16689662',
    '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '[::ffff:169.254.169.254]', '0:0:0:0:0:ffff:a9fe:a9fe',
    'fe80::1', 'FE80::a9fe:a9fe', 'febf:ffff::1', '[fe80::1]',
    '0.0.0.0', '0', '::', 'metadata.google.internal', 'Metadata.Google.Internal.', 'metadata',
    // AWS's IPv6 metadata address, Alibaba Cloud's and Azure's metadata services.
    'fd00:ec2::254', '[FD00:EC2:0:0:0:0:0:254]', 'fd00:ec2::ffff', '100.100.100.200', '1684301000', '168.63.129.16', '2822734096'
  ]
  for (const host of metadata) t.throws(() => policy.check(host), { code, statusCode: 403 }, host)
  t.equal(policy.check('203.0.113.7'), '203.0.113.7', 'anything else passes under *')
  t.equal(createBackendPolicy(['168.63.129.16']).check('168.63.129.16'), '168.63.129.16', 'a wire server named on purpose is the operator\'s choice')
  t.throws(() => createBackendPolicy(['fd00::/8']).check('fd00:ec2::254'), { code }, 'the IPv6 metadata network, even inside an allowed range')
})

t.test('a host with an IPv6 zone id is a 400 with a code, never a 500, and nothing is stored', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const registry = new Registry({ secret: SECRET, store, allowedBackends: ['*'] })
  for (const host of ['fe80::1%eth0', '[fe80::1%25eth0]', '::1%lo', 'fd12::5%1']) {
    await t.rejects(registry.registerServer({ serverName: 'zoned', host, port: 80 }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', statusCode: 400 }, host)
  }
  t.equal(await registry.discover('zoned'), null)
})

t.test('the default allows loopback, private networks and localhost only', async (t) => {
  const policy = createBackendPolicy()
  const allowed: Array<[string, string]> = [['127.0.0.1', '127.0.0.1'], ['127.1', '127.0.0.1'], ['2130706433', '127.0.0.1'], ['::1', '::1'], ['10.1.2.3', '10.1.2.3'], ['172.18.0.5', '172.18.0.5'], ['192.168.1.9', '192.168.1.9'], ['fd12::5', 'fd12::5'], ['localhost', 'localhost'], ['::ffff:10.0.0.1', '10.0.0.1']]
  for (const [host, stored] of allowed) {
    t.equal(policy.check(host), stored, host)
  }
  for (const host of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '2001:db8::1', 'example.com', 'todo-ui', '134744072']) {
    t.throws(() => policy.check(host), { code }, host)
  }
})

t.test('configured CIDRs, names and wildcard domains', async (t) => {
  const policy = createBackendPolicy(['203.0.113.0/24', 'todo-ui', '*.apps.internal', '2001:db8::/32'])
  t.equal(policy.check('203.0.113.200'), '203.0.113.200')
  t.equal(policy.check('TODO-UI'), 'todo-ui')
  t.equal(policy.check('grocery.apps.internal'), 'grocery.apps.internal')
  t.equal(policy.check('2001:db8::17'), '2001:db8::17')
  for (const host of ['203.0.114.1', 'apps.internal', 'evil-apps.internal', '127.0.0.1', 'other']) {
    t.throws(() => policy.check(host), { code }, host)
  }
  t.throws(() => createBackendPolicy(['10.0.0.0/33']), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => createBackendPolicy(['name/8']), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
})

t.test('registerServer applies the policy and stores the canonical spelling', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const registry = new Registry({ secret: SECRET, store })
  await t.rejects(registry.registerServer({ serverName: 'evil', host: '0xA9FEA9FE', port: 80 }), { code, statusCode: 403 })
  await t.rejects(registry.registerServer({ serverName: 'evil', host: 'example.com', port: 80 }), { code })
  t.equal(await registry.discover('evil'), null, 'nothing was stored')
  t.equal((await registry.registerServer({ serverName: 'todo', host: '2130706433', port: 8080 })).host, '127.0.0.1')
  t.equal((await registry.discover('todo'))?.host, '127.0.0.1', 'what was checked is what the proxy will dial')
})
