// Drives a live tablerest microblog with @supabase/postgrest-js, unchanged.
// Usage: node check.mjs <base URL of the dialect> <ann's token> <bob's token>
// Exits non-zero, naming the step, when an answer is not what PostgREST would give.
import assert from 'node:assert/strict'
import { PostgrestClient } from '@supabase/postgrest-js'

const [base, annToken, bobToken] = process.argv.slice(2)
const anon = new PostgrestClient(base)
const ann = new PostgrestClient(base, { headers: { Authorization: `Bearer ${annToken}` } })
const bob = new PostgrestClient(base, { headers: { Authorization: `Bearer ${bobToken}` } })

async function step(name, run) {
  try {
    await run()
  } catch (error) {
    console.error(`step failed: ${name}`)
    throw error
  }
}

function ok(result) {
  assert.equal(result.error, null, JSON.stringify(result.error))
  return result
}

await step('insert, no return', async () => {
  const result = ok(await ann.from('messages').insert({ content: 'js one' }))
  assert.equal(result.status, 201)
  assert.equal(result.data, null)
})

await step('bulk insert with select', async () => {
  const { data, status } = ok(await ann.from('messages')
    .insert([{ content: 'js two' }, { content: 'js three' }]).select('id, content'))
  assert.equal(status, 201)
  assert.deepEqual(data.map((row) => row.content), ['js two', 'js three'])
})

await step('select with an embed, filters, or, order', async () => {
  const { data } = ok(await anon.from('messages')
    .select('content, author(name), writer:users(name)')
    .or('content.eq.js one,content.like.*three')
    .not('content', 'is', null)
    .order('id', { ascending: false, nullsFirst: false }))
  assert.deepEqual(data, [
    { content: 'js three', author: { name: 'ann' }, writer: { name: 'ann' } },
    { content: 'js one', author: { name: 'ann' }, writer: { name: 'ann' } },
  ])
})

await step('to-many embed and in()', async () => {
  const { data } = ok(await anon.from('users').select('name, messages(content)')
    .in('name', ['ann', 'x,y']).limit(1))
  assert.equal(data[0].name, 'ann')
  assert.equal(data[0].messages.length, 3)
})

await step('nested embeds, an embedded filter, !inner and an anti-join', async () => {
  const { data } = ok(await anon.from('users')
    .select('name, messages!inner(content, author(name))')
    .like('messages.content', '*three').order('id'))
  assert.deepEqual(data, [{ name: 'ann', messages: [{ content: 'js three', author: { name: 'ann' } }] }])
  const { data: silent } = ok(await anon.from('users').select('name, messages()')
    .is('messages', null).order('id'))
  assert.deepEqual(silent, [{ name: 'bob' }])
})

await step('range with an exact count', async () => {
  const { data, count, status } = ok(await anon.from('messages')
    .select('id', { count: 'exact' }).order('id').range(1, 2))
  assert.equal(status, 206)
  assert.equal(count, 3)
  assert.equal(data.length, 2)
})

await step('head with a count', async () => {
  const { data, count } = ok(await anon.from('messages')
    .select('*', { count: 'exact', head: true }))
  assert.equal(data, null)
  assert.equal(count, 3)
})

await step('single and maybeSingle', async () => {
  const { data } = ok(await anon.from('users').select('name').eq('name', 'ann').single())
  assert.deepEqual(data, { name: 'ann' })
  const none = ok(await anon.from('users').select('name').eq('name', 'nobody').maybeSingle())
  assert.equal(none.data, null)
  const many = await anon.from('messages').select('id').single()
  assert.equal(many.status, 406)
  assert.equal(many.error.code, 'PGRST116')
})

await step('csv', async () => {
  const { data } = ok(await anon.from('users').select('id,name').order('id').csv())
  assert.equal(data, 'id,name\n1,ann\n2,bob')
})

await step('upsert both ways', async () => {
  const merged = ok(await ann.from('users')
    .upsert({ email: 'ann@x.org', name: 'Ann' }, { onConflict: 'email' }).select('name'))
  assert.deepEqual(merged.data, [{ name: 'Ann' }])
  const ignored = ok(await ann.from('users')
    .upsert({ email: 'ann@x.org', name: 'Other' }, { onConflict: 'email', ignoreDuplicates: true })
    .select('name'))
  assert.deepEqual(ignored.data, [])
})

await step('update and delete by filter, under the row policy', async () => {
  const updated = ok(await bob.from('messages').update({ content: 'mine?' })
    .like('content', 'js*').select())
  assert.deepEqual(updated.data, [])
  const changed = ok(await ann.from('messages').update({ content: 'js edited' })
    .eq('content', 'js one').select('content'))
  assert.deepEqual(changed.data, [{ content: 'js edited' }])
  const deleted = ok(await ann.from('messages').delete().eq('content', 'js edited'))
  assert.equal(deleted.status, 204)
})

await step('rollback', async () => {
  const { data } = ok(await ann.from('messages').insert({ content: 'dry run' })
    .select('content').rollback())
  assert.deepEqual(data, [{ content: 'dry run' }])
  const { count } = ok(await anon.from('messages').select('*', { count: 'exact', head: true })
    .eq('content', 'dry run'))
  assert.equal(count, 0)
})

await step('maxAffected', async () => {
  const result = await ann.from('messages').delete().like('content', 'js*').maxAffected(1)
  assert.equal(result.status, 400)
  assert.equal(result.error.code, 'PGRST124')
  assert.equal(result.error.details, 'The query affects 2 rows')
})

await step('errors are error objects', async () => {
  const missing = await anon.from('messages').select('nope')
  assert.equal(missing.status, 400)
  assert.equal(missing.error.code, '42703')
  const anonymous = await anon.from('messages').insert({ content: 'anon' })
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.error.code, '42501')
  const table = await anon.from('nope').select()
  assert.equal(table.status, 404)
  assert.equal(table.error.code, 'PGRST205')
})

console.log('postgrest-js: all steps passed')
