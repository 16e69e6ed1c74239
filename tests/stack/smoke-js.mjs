#!/usr/bin/env node
// smoke-js.mjs: supabase-js (pinned, Node 20 + ws) against $GATEWAY_URL with
// the anon key in $ANON_KEY_FILE. Exits non-zero on the first mismatch.
// Also a template for conformance tests: swap GATEWAY_URL for supagate's URL.
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const key = readFileSync(process.env.ANON_KEY_FILE, 'utf8');
const sb = createClient(process.env.GATEWAY_URL, key, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: ws },
});

let r = await sb.from('countries').select('name, cities(name)').eq('code', 'JP');
assert.equal(r.error, null);
assert.deepEqual(r.data, [{ name: 'Japan', cities: [{ name: 'Tokyo' }, { name: 'Osaka' }] }]);
r = await sb.rpc('add', { a: 1, b: 2 });
assert.equal(r.data, 3);
r = await sb.from('products').select('id').contains('tags', ['red']).order('id');
assert.deepEqual(r.data, [{ id: 1 }, { id: 4 }]);
r = await sb.from('countries').select('*', { count: 'exact', head: true });
assert.equal(r.count, 8);
r = await sb.functions.invoke('hello', { body: { name: 'js' } });
assert.deepEqual(r.data, { message: 'Hello js!' });
r = await sb.from('todos').select('*');
assert.deepEqual(r.data, []);
sb.removeAllChannels();
console.log('smoke-js: supabase-js via the gateway: ok');
process.exit(0);
