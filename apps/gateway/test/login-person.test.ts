import t from 'tap'
import { emailFrom, groupsFrom, MAX_PERSON_GROUP_BYTES, MAX_PERSON_GROUPS } from '../src/login-person.js'

t.test('groups as a login keeps them: valid names, once each, within what a cookie holds', async (t) => {
  t.same(groupsFrom(['ops', 'ops', 'staff', 'a,b', '', 42]), { groups: ['ops', 'staff'], dropped: 0 }, 'a list claim: invalid names are not groups')
  t.same(groupsFrom(' staff, ops ,'), { groups: ['staff', 'ops'], dropped: 0 }, 'a header: comma-separated')
  t.same(groupsFrom('ops'), { groups: ['ops'], dropped: 0 })
  t.same(groupsFrom(undefined), { groups: undefined, dropped: 0 })
  const many = groupsFrom(Array.from({ length: 100 }, (_, i) => `g${i}`))
  t.equal(many.groups?.length, MAX_PERSON_GROUPS)
  t.equal(many.dropped, 100 - MAX_PERSON_GROUPS, 'past the count: left out, and counted for the log')
  // Entra ID object ids and Keycloak group paths are long: the byte budget keeps the cookie under 4 KB.
  const long = groupsFrom(Array.from({ length: 60 }, (_, i) => `/realm/department-${i}/${'x'.repeat(80)}`))
  t.ok(Buffer.byteLength(JSON.stringify(long.groups)) <= MAX_PERSON_GROUP_BYTES + 64, 'past the bytes: left out')
  t.ok(long.dropped > 0)
})

t.test('an email address counts only when vouched for', async (t) => {
  t.equal(emailFrom('bob@corp.example', true), 'bob@corp.example')
  t.equal(emailFrom('bob@corp.example', false), undefined)
  t.equal(emailFrom('bob', true), undefined, 'not an address')
  t.equal(emailFrom('a@b@c', true), undefined)
  t.equal(emailFrom(['bob@corp.example'], true), undefined)
})
