-- schema.sql: a Supabase-like database for supagate's loopback test stack.
--
-- Loaded by stack-up as the superuser with
--   psql -v ON_ERROR_STOP=1 -v authenticator_password=... -f schema.sql
-- Everything here is deterministic: fixed ids, fixed seed rows, fixed UUIDs.

\set ON_ERROR_STOP on

-- ---------------------------------------------------------------------------
-- Roles, as on Supabase. PostgREST logs in as "authenticator" and switches to
-- the role named by the JWT's "role" claim (or "anon" without a JWT).
-- ---------------------------------------------------------------------------
-- Roles are cluster-wide: create them only once, so stack-reset can reload
-- this file into the same cluster.
select not exists (select 1 from pg_roles where rolname = 'authenticator') as need_roles \gset
\if :need_roles
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit password :'authenticator_password';
grant anon, authenticated, service_role to authenticator;
\endif

-- ---------------------------------------------------------------------------
-- auth schema: the helpers RLS policies use. They read the claims PostgREST
-- puts into the transaction-local setting request.jwt.claims (and the legacy
-- per-claim request.jwt.claim.* settings), as Supabase's own functions do.
-- ---------------------------------------------------------------------------
create schema auth;
grant usage on schema auth to anon, authenticated, service_role;

create function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

grant execute on all functions in schema auth to anon, authenticated, service_role;

-- A users table shaped like GoTrue's (subset). The Auth emulator may use it or
-- keep its own store; public tables do not reference it, so users that exist
-- only in the emulator can still own rows.
create table auth.users (
  id                  uuid primary key default gen_random_uuid(),
  aud                 text not null default 'authenticated',
  role                text not null default 'authenticated',
  email               text unique,
  phone               text unique,
  encrypted_password  text,
  email_confirmed_at  timestamptz,
  last_sign_in_at     timestamptz,
  raw_app_meta_data   jsonb not null default '{"provider":"email","providers":["email"]}',
  raw_user_meta_data  jsonb not null default '{}',
  is_anonymous        boolean not null default false,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now()
);
-- Only the superuser (and so the emulator, if it connects as postgres) and
-- service_role may touch auth.users; clients never read it through PostgREST
-- because the auth schema is not exposed.
grant all on auth.users to service_role;

insert into auth.users (id, email, encrypted_password, email_confirmed_at, raw_user_meta_data, created_at, updated_at)
values
  ('11111111-1111-1111-1111-111111111111', 'alice@example.com', null, '2024-01-01T00:00:00Z', '{"name":"Alice"}', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z'),
  ('22222222-2222-2222-2222-222222222222', 'bob@example.com',   null, '2024-01-01T00:00:00Z', '{"name":"Bob"}',   '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');

-- ---------------------------------------------------------------------------
-- public schema: grants as on a Supabase project. Every API role gets all
-- privileges; row level security is what restricts anon/authenticated.
-- ---------------------------------------------------------------------------
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables    to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- countries / cities: no RLS (like a fresh Supabase table without RLS), so
-- anon may read and write them. cities.country_id makes embedding work:
--   /countries?select=name,cities(name)   /cities?select=name,countries(name)
create table public.countries (
  id    serial primary key,
  name  text not null unique,
  code  text not null unique
);

create table public.cities (
  id          serial primary key,
  name        text not null,
  country_id  integer not null references public.countries(id) on delete cascade,
  population  integer
);
create index on public.cities (country_id);

insert into public.countries (id, name, code) values
  (1, 'Afghanistan', 'AF'),
  (2, 'Albania',     'AL'),
  (3, 'Algeria',     'DZ'),
  (4, 'France',      'FR'),
  (5, 'Germany',     'DE'),
  (6, 'Japan',       'JP'),
  (7, 'Kenya',       'KE'),
  (8, 'Peru',        'PE');
select setval('public.countries_id_seq', 8);

insert into public.cities (id, name, country_id, population) values
  (1, 'Kabul',     1, 4601789),
  (2, 'Tirana',    2,  557422),
  (3, 'Algiers',   3, 3415811),
  (4, 'Paris',     4, 2102650),
  (5, 'Lyon',      4,  522250),
  (6, 'Berlin',    5, 3677472),
  (7, 'Hamburg',   5, 1906411),
  (8, 'Tokyo',     6, 13960000),
  (9, 'Osaka',     6, 2752000),
  (10, 'Nairobi',  7, 4397073),
  (11, 'Lima',     8, 9751000);
select setval('public.cities_id_seq', 11);

-- todos: per-user rows under RLS. A user sees, inserts, updates and deletes
-- only rows whose user_id is their JWT's sub; anon sees none and cannot write.
create table public.todos (
  id           bigserial primary key,
  user_id      uuid not null default auth.uid(),
  task         text not null check (char_length(task) > 0),
  done         boolean not null default false,
  inserted_at  timestamptz not null default now()
);
alter table public.todos enable row level security;
create policy todos_select on public.todos for select to authenticated
  using (user_id = auth.uid());
create policy todos_insert on public.todos for insert to authenticated
  with check (user_id = auth.uid());
create policy todos_update on public.todos for update to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());
create policy todos_delete on public.todos for delete to authenticated
  using (user_id = auth.uid());

insert into public.todos (id, user_id, task, done, inserted_at) values
  (1, '11111111-1111-1111-1111-111111111111', 'alice: buy milk',     false, '2024-01-02T10:00:00Z'),
  (2, '11111111-1111-1111-1111-111111111111', 'alice: write report', true,  '2024-01-02T11:00:00Z'),
  (3, '22222222-2222-2222-2222-222222222222', 'bob: fix bike',       false, '2024-01-03T09:00:00Z');
select setval('public.todos_id_seq', 100);  -- new rows start at 101

-- messages: readable by everyone (anon included); anyone may post, but only
-- authenticated users may update or delete their own.
create table public.messages (
  id          bigserial primary key,
  user_id     uuid default auth.uid(),
  channel     text not null default 'general',
  body        text not null,
  created_at  timestamptz not null default now()
);
alter table public.messages enable row level security;
create policy messages_select on public.messages for select to anon, authenticated
  using (true);
create policy messages_insert on public.messages for insert to anon, authenticated
  with check (true);
create policy messages_update on public.messages for update to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());
create policy messages_delete on public.messages for delete to authenticated
  using (user_id = auth.uid());

insert into public.messages (id, user_id, channel, body, created_at) values
  (1, null,                                   'general', 'Welcome to the test stack', '2024-01-01T00:00:00Z'),
  (2, '11111111-1111-1111-1111-111111111111', 'general', 'Hello from Alice',          '2024-01-01T01:00:00Z'),
  (3, '22222222-2222-2222-2222-222222222222', 'random',  'Hi, Bob here',              '2024-01-01T02:00:00Z');
select setval('public.messages_id_seq', 100);

-- products: columns for array/JSON/range/full-text filters
-- (cs, cd, ov, sr, sl, nxl, nxr, adj, fts, is, in, like, ilike ...).
-- Readable by everyone, writable by service_role only (it bypasses RLS).
create table public.products (
  id           integer primary key,
  name         text not null,
  description  text,
  price        numeric(10,2) not null,
  in_stock     boolean,
  tags         text[] not null default '{}',
  meta         jsonb not null default '{}',
  sizes        int4range
);
alter table public.products enable row level security;
create policy products_select on public.products for select to anon, authenticated
  using (true);

insert into public.products (id, name, description, price, in_stock, tags, meta, sizes) values
  (1, 'Red shirt',    'A bright red cotton shirt',       19.99, true,  '{red,cotton,shirt}',   '{"color":"red","material":{"name":"cotton"},"rating":4}',  '[36,44)'),
  (2, 'Blue jeans',   'Classic blue denim jeans',        49.50, true,  '{blue,denim}',         '{"color":"blue","material":{"name":"denim"},"rating":5}',  '[28,40)'),
  (3, 'Green hat',    'A green woollen hat for winter',  15.00, false, '{green,wool,hat}',     '{"color":"green","material":{"name":"wool"},"rating":3}',  '[54,62)'),
  (4, 'Red socks',    'Soft red socks, pack of three',    7.25, true,  '{red,cotton}',         '{"color":"red","material":{"name":"cotton"},"rating":4}',  '[35,47)'),
  (5, 'Black boots',  'Waterproof black leather boots',  89.00, null,  '{black,leather,boots}','{"color":"black","material":{"name":"leather"}}',           null);

-- A view, so cache tests can read a view as well as a table.
create view public.country_city_counts with (security_invoker = true) as
  select c.id, c.name, c.code, count(ci.id)::int as city_count
  from public.countries c left join public.cities ci on ci.country_id = c.id
  group by c.id, c.name, c.code;

-- ---------------------------------------------------------------------------
-- RPC functions (/rest/v1/rpc/<name>)
-- ---------------------------------------------------------------------------
-- add(a, b): immutable scalar; GET or POST.
create function public.add(a integer, b integer) returns integer
language sql immutable
as $$ select a + b $$;

-- hello(name): stable scalar text.
create function public.hello(name text default 'world') returns text
language sql stable
as $$ select 'Hello, ' || name || '!' $$;

-- whoami(): what the database sees of the caller.
create function public.whoami() returns json
language sql stable
as $$
  select jsonb_build_object(
    'role',    auth.role(),
    'sub',     auth.uid(),
    'email',   auth.email(),
    'aud',     auth.jwt() ->> 'aud',
    'iss',     auth.jwt() ->> 'iss',
    'exp',     (auth.jwt() ->> 'exp')::bigint,
    'db_role', current_user
  )::json
$$;

-- countries_starting_with(prefix): set-returning; filters and modifiers apply,
-- e.g. /rpc/countries_starting_with?prefix=A&order=name.desc&limit=2
create function public.countries_starting_with(prefix text) returns setof public.countries
language sql stable
as $$ select * from public.countries where name like prefix || '%' order by id $$;

-- add_message(body, channel): volatile, writes a row (POST only; GET -> 405).
create function public.add_message(body text, channel text default 'general') returns public.messages
language sql volatile
as $$
  insert into public.messages (body, channel) values (body, channel) returning *
$$;

-- noop(): void -> 204.
create function public.noop() returns void
language sql immutable
as $$ select $$;

-- cached_hello(): sets Cache-Control through PostgREST's response.headers GUC,
-- for tests of honouring upstream max-age.
create function public.cached_hello() returns text
language plpgsql stable
as $$
begin
  perform set_config('response.headers', '[{"Cache-Control": "public, max-age=60"}]', true);
  return 'Hello, cached!';
end
$$;

-- no_store(): answers with Cache-Control: no-store (must never be cached).
create function public.no_store() returns text
language plpgsql stable
as $$
begin
  perform set_config('response.headers', '[{"Cache-Control": "no-store"}]', true);
  return 'never cache me';
end
$$;

-- fail(msg): raises P0001 -> 400 with the message.
create function public.fail(msg text default 'failed on purpose') returns void
language plpgsql immutable
as $$ begin raise exception '%', msg; end $$;

-- sleep_ms(ms): stable, sleeps then returns ms (upstream timeout tests).
create function public.sleep_ms(ms integer) returns integer
language plpgsql stable
as $$ begin perform pg_sleep(ms / 1000.0); return ms; end $$;

-- Defaults above cover objects created after them; make it explicit for all.
grant all on all tables    in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
grant execute on all functions in schema public to anon, authenticated, service_role;

-- Let a running PostgREST pick up schema changes made by tests.
notify pgrst, 'reload schema';
