// Drives a live tablerest server reflecting Chinook (tablerest serve --db URL --postgrest) with
// @supabase/postgrest-js, unchanged.
// Usage: node chinook.mjs <base URL of the dialect> <sqlite|postgresql>
// Names are written as the SQLite copy spells them (PascalCase); n() gives the PostgreSQL
// copy's snake_case. Exits non-zero, naming the step, when an answer is not PostgREST's.
import assert from 'node:assert/strict'
import { PostgrestClient } from '@supabase/postgrest-js'

const [base, backend] = process.argv.slice(2)
const db = new PostgrestClient(base)
const pg = backend === 'postgresql'

// The database's spelling of a SQLite-spelt name (TrackId -> track_id on PostgreSQL).
const n = (name) => (pg ? name.replace(/(?<=[a-z0-9])(?=[A-Z])/g, '_').toLowerCase() : name)
// A select (or a value's keys) with every capitalised name translated; aliases are lower case.
const sel = (text) => text.replace(/\b[A-Z][A-Za-z]*\b/g, n)
const keys = (value) => {
  if (Array.isArray(value)) return value.map(keys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value)
    .map(([key, inner]) => [/^[A-Z]/.test(key) ? n(key) : key, keys(inner)]))
}
// The key of a new row: PostgreSQL's Chinook keys have no default, SQLite's are the rowid.
const key = (name, value) => (pg ? { [n(name)]: value } : {})
const from = (table) => db.from(n(table))

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

// Reads: [name, query, expected rows (SQLite spelling)]. A nested embed is one more line,
// e.g. ['artist -> albums -> tracks', () => from('Artist').select(sel('Name, Album(Title,
// Track(Name))')).eq(n('ArtistId'), 1), [...]].
const reads = [
  ['artist -> albums (to-many embed)',
    () => from('Artist').select(sel('Name, Album(Title)')).eq(n('ArtistId'), 1),
    [{ Name: 'AC/DC', Album: [{ Title: 'For Those About To Rock We Salute You' },
      { Title: 'Let There Be Rock' }] }]],
  ['artist -> albums -> tracks (nested, the tracks ordered and limited per album)',
    () => from('Artist').select(sel('Name, Album(Title, Track(Name))')).eq(n('ArtistId'), 1)
      .order(n('TrackId'), { ascending: false, referencedTable: `${n('Album')}.${n('Track')}` })
      .limit(2, { referencedTable: `${n('Album')}.${n('Track')}` }),
    [{ Name: 'AC/DC', Album: [
      { Title: 'For Those About To Rock We Salute You',
        Track: [{ Name: 'Spellbound' }, { Name: 'Night Of The Long Knives' }] },
      { Title: 'Let There Be Rock',
        Track: [{ Name: 'Whole Lotta Rosie' }, { Name: "Hell Ain't A Bad Place To Be" }] }] }]],
  ['album -> artist (to-one embed, aliased)',
    () => from('Album').select(sel('Title, band:Artist(Name)')).eq(n('AlbumId'), 1),
    [{ Title: 'For Those About To Rock We Salute You', band: { Name: 'AC/DC' } }]],
  ['invoice lines -> track',
    () => from('InvoiceLine').select(sel('InvoiceLineId, Track(Name)')).eq(n('InvoiceId'), 1)
      .order(n('InvoiceLineId')),
    [{ InvoiceLineId: 1, Track: { Name: 'Balls to the Wall' } },
      { InvoiceLineId: 2, Track: { Name: 'Restless and Wild' } }]],
  ['or, order descending',
    () => from('Artist').select(sel('ArtistId, Name'))
      .or(`${n('Name')}.like.Led*,${n('ArtistId')}.eq.1`)
      .order(n('ArtistId'), { ascending: false }),
    [{ ArtistId: 22, Name: 'Led Zeppelin' }, { ArtistId: 1, Name: 'AC/DC' }]],
  ['in, gte, not is null, ilike',
    () => from('Track').select(sel('TrackId')).in(n('GenreId'), [24, 25])
      .gte(n('Milliseconds'), 300000).not(n('Name'), 'is', null).ilike(n('Name'), '%A%')
      .order(n('TrackId')).limit(2),
    [{ TrackId: 3359 }, { TrackId: 3410 }]],
]

for (const [name, query, expected] of reads) {
  await step(name, async () => {
    const { data, status } = ok(await query())
    assert.equal(status, 200)
    assert.deepEqual(data, keys(expected))
  })
}

await step('filters with an exact count', async () => {
  const { count } = ok(await from('Track').select('*', { count: 'exact', head: true })
    .in(n('GenreId'), [24, 25]).gte(n('Milliseconds'), 300000))
  assert.equal(count, 29)
  const { count: loved } = ok(await from('Track').select('*', { count: 'exact', head: true })
    .ilike(n('Name'), '%love%'))
  assert.equal(loved, 114)
})

await step('range with an exact count', async () => {
  const { data, count, status } = ok(await from('Track').select(n('TrackId'), { count: 'exact' })
    .order(n('TrackId')).range(10, 19))
  assert.equal(status, 206)
  assert.equal(count, 3503)
  assert.deepEqual(data.map((row) => row[n('TrackId')]), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
})

await step('single and maybeSingle', async () => {
  const { data } = ok(await from('Genre').select(sel('GenreId, Name')).eq(n('Name'), 'Jazz').single())
  assert.deepEqual(data, keys({ GenreId: 2, Name: 'Jazz' }))
  const none = ok(await from('Genre').select(n('Name')).eq(n('Name'), 'Polka').maybeSingle())
  assert.equal(none.data, null)
  const many = await from('Genre').select(n('Name')).single()
  assert.equal(many.status, 406)
  assert.equal(many.error.code, 'PGRST116')
})

await step('csv', async () => {
  const { data } = ok(await from('Genre').select(sel('GenreId,Name')).order(n('GenreId')).limit(3).csv())
  assert.equal(data, `${n('GenreId')},${n('Name')}\n1,Rock\n2,Jazz\n3,Metal`)
})

await step('insert, no return', async () => {
  const result = ok(await from('Genre').insert({ ...key('GenreId', 26), [n('Name')]: 'Chiptune' }))
  assert.equal(result.status, 201)
  assert.equal(result.data, null)
})

await step('bulk insert with select', async () => {
  const { data, status } = ok(await from('Genre')
    .insert([{ ...key('GenreId', 27), [n('Name')]: 'Vaporwave' },
      { ...key('GenreId', 28), [n('Name')]: 'Synthwave' }]).select(n('Name')))
  assert.equal(status, 201)
  assert.deepEqual(data, keys([{ Name: 'Vaporwave' }, { Name: 'Synthwave' }]))
})

await step('upsert, merging duplicates', async () => {
  const { data, status } = ok(await from('PlaylistTrack')
    .upsert(keys([{ PlaylistId: 18, TrackId: 597 }, { PlaylistId: 18, TrackId: 1 }]))
    .select(sel('PlaylistId, TrackId')))
  assert.equal(status, 201)
  assert.deepEqual(data, keys([{ PlaylistId: 18, TrackId: 597 }, { PlaylistId: 18, TrackId: 1 }]))
})

await step('upsert, ignoring duplicates', async () => {
  const { data } = ok(await from('PlaylistTrack')
    .upsert(keys([{ PlaylistId: 18, TrackId: 1 }]),
      { onConflict: sel('PlaylistId,TrackId'), ignoreDuplicates: true }).select())
  assert.deepEqual(data, [])
})

await step('update and delete by filter', async () => {
  const changed = ok(await from('Genre').update({ [n('Name')]: 'Synth' })
    .eq(n('Name'), 'Synthwave').select(n('Name')))
  assert.deepEqual(changed.data, keys([{ Name: 'Synth' }]))
  const deleted = ok(await from('Genre').delete().in(n('Name'), ['Vaporwave', 'Synth']))
  assert.equal(deleted.status, 204)
})

await step('rollback', async () => {
  const { data } = ok(await from('Genre').insert({ ...key('GenreId', 29), [n('Name')]: 'Dry run' })
    .select(n('Name')).rollback())
  assert.deepEqual(data, keys([{ Name: 'Dry run' }]))
  const { count } = ok(await from('Genre').select('*', { count: 'exact', head: true })
    .eq(n('Name'), 'Dry run'))
  assert.equal(count, 0)
})

await step('maxAffected', async () => {
  const result = await from('Track').update({ [n('Composer')]: 'nobody' })
    .eq(n('GenreId'), 24).maxAffected(5)
  assert.equal(result.status, 400)
  assert.equal(result.error.code, 'PGRST124')
  assert.equal(result.error.details, 'The query affects 74 rows')
})

await step('errors are error objects', async () => {
  const missing = await from('Track').select('nope')
  assert.equal(missing.status, 400)
  assert.equal(missing.error.code, '42703')
  const orphan = await from('Album').insert({ ...key('AlbumId', 1000), [n('Title')]: 'x',
    [n('ArtistId')]: 999999 })
  assert.equal(orphan.status, 409)
  assert.equal(orphan.error.code, '23503')
  const referred = await from('Artist').delete().eq(n('ArtistId'), 1)
  assert.equal(referred.status, 409)
  assert.equal(referred.error.code, '23503')
  const table = await db.from('nope').select()
  assert.equal(table.status, 404)
  assert.equal(table.error.code, 'PGRST205')
})

console.log('postgrest-js on Chinook: all steps passed')
