// ops-rest.mjs: PostgREST operations (select with every filter and modifier,
// insert, update, upsert, delete, rpc), as anon and as a signed-in user.
import { pg } from './lib.mjs';

// Expectations shared by all areas: checked on both sides, so a broken stack
// is told apart from a supagate difference.
export const ok = (v) => (v.error ? `unexpected error ${JSON.stringify(v.error)}` : null);
export const errCode = (code) => (v) =>
  !v.error ? 'expected an error, got none'
    : String(v.error.code) !== String(code) && String(v.error.statusCode) !== String(code)
      ? `expected error code ${code}, got ${JSON.stringify(v.error)}` : null;
export const all = (...fs) => (v, ctx) => {
  for (const f of fs) { const p = f(v, ctx); if (p) return p; }
  return null;
};
const rows = (n) => (v) => (Array.isArray(v.data) && v.data.length === n ? null : `expected ${n} rows, got ${JSON.stringify(v.data)}`);

const sel = (name, build, expect = ok) => ({
  area: 'rest', name, expect,
  run: async (c) => pg(await build(c.anon)),
});

export const restOps = [
  sel('select', (s) => s.from('countries').select('*').order('id'), all(ok, rows(8))),
  sel('select embedded', (s) => s.from('countries').select('name, cities(name)').eq('code', 'JP'), all(ok, rows(1))),
  sel('eq', (s) => s.from('countries').select('id, name').eq('code', 'FR'), all(ok, rows(1))),
  sel('neq', (s) => s.from('countries').select('id').neq('id', 1).order('id'), all(ok, rows(7))),
  sel('gt', (s) => s.from('countries').select('id').gt('id', 6).order('id'), all(ok, rows(2))),
  sel('gte', (s) => s.from('countries').select('id').gte('id', 6).order('id'), all(ok, rows(3))),
  sel('lt', (s) => s.from('countries').select('id').lt('id', 3).order('id'), all(ok, rows(2))),
  sel('lte', (s) => s.from('countries').select('id').lte('id', 3).order('id'), all(ok, rows(3))),
  sel('like', (s) => s.from('countries').select('name').like('name', '%an%').order('id'), all(ok, rows(5))),
  sel('ilike', (s) => s.from('countries').select('name').ilike('name', 'AL%').order('id'), all(ok, rows(2))),
  sel('is', (s) => s.from('products').select('id, in_stock').is('in_stock', null), all(ok, rows(1))),
  sel('in', (s) => s.from('countries').select('id, code').in('id', [1, 3, 5]).order('id'), all(ok, rows(3))),
  sel('contains', (s) => s.from('products').select('id, tags').contains('tags', ['red']).order('id'), all(ok, rows(2))),
  sel('contains (jsonb)', (s) => s.from('products').select('id').contains('meta', { color: 'red' }).order('id'), all(ok, rows(2))),
  sel('containedBy', (s) => s.from('products').select('id').containedBy('tags', ['red', 'cotton', 'shirt', 'blue', 'denim']).order('id'), all(ok, rows(3))),
  sel('match', (s) => s.from('countries').select('id').match({ code: 'FR', name: 'France' }), all(ok, rows(1))),
  sel('not', (s) => s.from('products').select('id').not('in_stock', 'is', null).order('id'), all(ok, rows(4))),
  sel('filter', (s) => s.from('countries').select('name').filter('name', 'in', '("Japan","Peru")').order('id'), all(ok, rows(2))),
  sel('or', (s) => s.from('countries').select('id').or('id.eq.2,name.eq.Peru').order('id'), all(ok, rows(2))),
  sel('order', (s) => s.from('cities').select('name, population').order('population', { ascending: false }).limit(3), all(ok, rows(3))),
  sel('order (embedded, nullsFirst)', (s) => s.from('products').select('id, in_stock').order('in_stock', { nullsFirst: true }).order('id'), all(ok, rows(5))),
  sel('limit', (s) => s.from('countries').select('id').order('id').limit(2), all(ok, rows(2))),
  sel('range', (s) => s.from('countries').select('id').order('id').range(2, 4), all(ok, rows(3))),
  sel('single', (s) => s.from('countries').select('id, name').eq('id', 4).single()),
  sel('single (error: many rows)', (s) => s.from('countries').select('id').single(), errCode('PGRST116')),
  sel('maybeSingle (row)', (s) => s.from('countries').select('name').eq('code', 'PE').maybeSingle()),
  sel('maybeSingle (none)', (s) => s.from('countries').select('name').eq('code', 'XX').maybeSingle(),
    all(ok, (v) => (v.data === null ? null : 'expected null data'))),
  sel('count', (s) => s.from('countries').select('id', { count: 'exact' }).lt('id', 4).order('id'),
    all(ok, (v) => (v.count === 3 ? null : `expected count 3, got ${v.count}`))),
  sel('count head', (s) => s.from('countries').select('*', { count: 'exact', head: true }),
    all(ok, (v) => (v.count === 8 ? null : `expected count 8, got ${v.count}`))),
  sel('csv', (s) => s.from('countries').select('id, name').lt('id', 4).order('id').csv(),
    all(ok, (v) => (typeof v.data === 'string' && v.data.startsWith('id,name') ? null : `not CSV: ${v.data}`))),
  sel('view', (s) => s.from('country_city_counts').select('*').order('id'), all(ok, rows(8))),
  sel('select (error: unknown table)', (s) => s.from('no_such_table').select('*'), (v) => (v.error ? null : 'expected an error')),
  sel('select (error: unknown column)', (s) => s.from('countries').select('nope'), errCode('42703')),
  {
    area: 'rest', name: 'select with a malformed bearer token (error)',
    run: async (c) => pg(await c.client({ Authorization: 'Bearer not-a-jwt' }).from('countries').select('id').limit(1)),
    expect: (v) => (v.error ? null : `expected PostgREST to refuse the token, got ${JSON.stringify(v)}`),
  },
  sel('select todos as anon (RLS: none)', (s) => s.from('todos').select('*'), all(ok, rows(0))),

  // Writes on countries (no RLS: anon may write).
  sel('insert', (s) => s.from('countries').insert({ id: 9, name: 'Chile', code: 'CL' }),
    all(ok, (v) => (v.status === 201 ? null : `expected 201, got ${v.status}`))),
  sel('insert select', (s) => s.from('countries').insert([{ id: 10, name: 'Norway', code: 'NO' }, { id: 11, name: 'Oman', code: 'OM' }]).select(),
    all(ok, rows(2))),
  sel('insert (error: duplicate)', (s) => s.from('countries').insert({ id: 9, name: 'Chile', code: 'CL' }), errCode('23505')),
  sel('insert count', (s) => s.from('countries').insert({ id: 12, name: 'Qatar', code: 'QA' }, { count: 'exact' }), ok),
  sel('update', (s) => s.from('countries').update({ name: 'Chile (updated)' }).eq('id', 9), ok),
  sel('update select', (s) => s.from('countries').update({ name: 'Republic of Chile' }).eq('id', 9).select(), all(ok, rows(1))),
  sel('upsert', (s) => s.from('countries').upsert({ id: 10, name: 'Kingdom of Norway', code: 'NO' }).select(), all(ok, rows(1))),
  sel('upsert onConflict', (s) => s.from('countries').upsert({ name: 'Oman', code: 'OM2' }, { onConflict: 'name' }).select(), all(ok, rows(1))),
  sel('upsert ignoreDuplicates', (s) => s.from('countries').upsert([{ id: 11, name: 'Oman', code: 'OM' }, { id: 13, name: 'Samoa', code: 'WS' }], { ignoreDuplicates: true }).select(), all(ok, rows(1))),
  sel('delete', (s) => s.from('countries').delete().eq('id', 12), all(ok, (v) => (v.status === 204 ? null : `expected 204, got ${v.status}`))),
  sel('delete select', (s) => s.from('countries').delete().in('id', [9, 10, 11, 13]).select('id').order('id'), all(ok, rows(4))),
  sel('select after writes', (s) => s.from('countries').select('*', { count: 'exact' }).order('id'), all(ok, rows(8))),

  // RPC
  sel('rpc', (s) => s.rpc('add', { a: 1, b: 2 }), all(ok, (v) => (v.data === 3 ? null : `expected 3, got ${v.data}`))),
  sel('rpc get', (s) => s.rpc('hello', { name: 'supagate' }, { get: true }), ok),
  sel('rpc no args (void)', (s) => s.rpc('noop'), ok),
  sel('rpc set-returning with filters', (s) => s.rpc('countries_starting_with', { prefix: 'A' }).gt('id', 1).order('name', { ascending: false }).limit(1), all(ok, rows(1))),
  sel('rpc head count', (s) => s.rpc('countries_starting_with', { prefix: 'A' }, { head: true, count: 'exact' }),
    all(ok, (v) => (v.count === 3 ? null : `expected count 3, got ${v.count}`))),
  sel('rpc whoami (anon)', (s) => s.rpc('whoami'), all(ok, (v) => (v.data && v.data.role === 'anon' ? null : `expected role anon: ${JSON.stringify(v.data)}`))),
  sel('rpc volatile (writes)', (s) => s.rpc('add_message', { body: 'from rpc' }), ok),
  sel('rpc (error: raise)', (s) => s.rpc('fail', { msg: 'nope' }), errCode('P0001')),
  sel('rpc (error: unknown function)', (s) => s.rpc('no_such_function'), (v) => (v.error ? null : 'expected an error')),
];

// Operations as a signed-in user (todos under RLS). They need the user
// client made by the auth ops (ctx.s.user).
const usr = (name, build, expect = ok) => ({
  area: 'rest', name, expect,
  run: async (c) => pg(await build(c.s.user)),
});

export const restUserOps = [
  usr('select as user (RLS: own rows)', (s) => s.from('todos').select('*'), all(ok, rows(0))),
  usr('insert as user', (s) => s.from('todos').insert({ id: 500, task: 'conformance' }).select('id, task, done, user_id'), all(ok, rows(1))),
  usr('select as user after insert', (s) => s.from('todos').select('id, task'), all(ok, rows(1))),
  // Same request as anon: a cache must not answer it with the user's rows.
  sel('select todos as anon after the user\'s insert', (s) => s.from('todos').select('id, task'), all(ok, rows(0))),
  usr('update as user', (s) => s.from('todos').update({ done: true }).eq('id', 500).select('id, done'), all(ok, rows(1))),
  usr('rpc whoami (user)', (s) => s.rpc('whoami'), all(ok, (v) => (v.data && v.data.role === 'authenticated' ? null : `expected role authenticated: ${JSON.stringify(v.data)}`))),
  usr('update other user\'s row (RLS: none)', (s) => s.from('todos').update({ done: true }).eq('id', 3).select(), all(ok, rows(0))),
  usr('delete as user', (s) => s.from('todos').delete().eq('id', 500).select('id'), all(ok, rows(1))),
  sel('insert as anon (error: RLS)', (s) => s.from('todos').insert({ task: 'anon' }), errCode('42501')),
];
