// ops-storage.mjs: buckets, objects, signed URLs (fetched with no key through
// the client's base URL), signed uploads and public URLs. As the signed-in user.
import { st, fetchDesc } from './lib.mjs';
import { ok, errCode, all } from './ops-rest.mjs';

const op = (name, run, expect = ok) => ({ area: 'storage', name, run, expect });
const PRIV = 'conf-private';
const PUB = 'conf-public';
const TMP = 'conf-temp';
const under = (base, url) => (typeof url === 'string' && url.startsWith(`${base}/storage/v1/`) ? null : `URL not under the client's base: ${url}`);
const fetched = (status, text) => (v) =>
  v.status !== status ? `fetch answered ${v.status}: ${JSON.stringify(v.body)}`
    : text !== undefined && (!v.body || v.body.text !== text) ? `fetch body ${JSON.stringify(v.body)}` : null;
const b = (c, bucket = PRIV) => c.s.user.storage.from(bucket);
const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da6364f8ffbf1e0005fe02fea7d6a4a30000000049454e44ae426082', 'hex');

export const storageOps = [
  op('createBucket', async (c) => st(await c.s.user.storage.createBucket(PRIV, {
    public: false, allowedMimeTypes: ['text/*', 'image/png', 'application/octet-stream', 'application/x-test'], fileSizeLimit: '1MB',
  }))),
  op('createBucket (public)', async (c) => st(await c.s.user.storage.createBucket(PUB, { public: true }))),
  op('createBucket (temp)', async (c) => st(await c.s.user.storage.createBucket(TMP))),
  op('createBucket (error: exists)', async (c) => st(await c.s.user.storage.createBucket(PRIV)), errCode('409')),
  op('createBucket (error: anon not allowed)', async (c) => st(await c.anon.storage.createBucket('conf-anon')), (v) => (v.error ? null : 'expected an error')),
  op('getBucket', async (c) => st(await c.s.user.storage.getBucket(PRIV)),
    all(ok, (v) => (v.data && v.data.file_size_limit === 1000000 ? null : `unexpected ${JSON.stringify(v.data)}`))),
  op('getBucket (error: missing)', async (c) => st(await c.s.user.storage.getBucket('conf-missing')), errCode('404')),
  op('listBuckets', async (c) => {
    const v = await st(await c.s.user.storage.listBuckets());
    if (Array.isArray(v.data)) v.data.sort((x, y) => x.name.localeCompare(y.name));
    return v;
  }, all(ok, (v) => (v.data.length === 3 ? null : `expected 3 buckets, got ${v.data.length}`))),
  op('updateBucket', async (c) => st(await c.s.user.storage.updateBucket(PRIV, {
    public: false, fileSizeLimit: 2000000, allowedMimeTypes: ['text/*', 'image/png', 'application/octet-stream', 'application/x-test'],
  }))),
  op('getBucket after update', async (c) => st(await c.s.user.storage.getBucket(PRIV)),
    all(ok, (v) => (v.data.file_size_limit === 2000000 ? null : `not updated: ${JSON.stringify(v.data)}`))),

  op('upload', async (c) => st(await b(c).upload('folder/a.txt', Buffer.from('hello conformance'), { contentType: 'text/plain' })),
    all(ok, (v) => (v.data && v.data.path === 'folder/a.txt' ? null : `unexpected ${JSON.stringify(v.data)}`))),
  op('upload (error: exists)', async (c) => st(await b(c).upload('folder/a.txt', Buffer.from('again'))), errCode('409')),
  op('upload upsert', async (c) => st(await b(c).upload('folder/a.txt', Buffer.from('hello again'), { contentType: 'text/plain', upsert: true, cacheControl: '120' }))),
  op('upload Blob (multipart)', async (c) => st(await b(c).upload('folder/b.bin', new Blob(['blob data'], { type: 'application/x-test' }), { cacheControl: '60' }))),
  op('upload binary with metadata', async (c) => st(await b(c).upload('img/pixel.png', png, { contentType: 'image/png', metadata: { k: 'v' } }))),
  op('upload (error: mime type)', async (c) => st(await b(c).upload('folder/x.json', Buffer.from('{}'), { contentType: 'application/json' })), errCode('415')),
  op('download', async (c) => st(await b(c).download('folder/a.txt')),
    all(ok, (v) => (v.data.blob && v.data.blob.text === 'hello again' ? null : `unexpected ${JSON.stringify(v.data)}`))),
  op('download binary', async (c) => st(await b(c).download('img/pixel.png')),
    all(ok, (v) => (v.data.blob && v.data.blob.size === png.length ? null : 'wrong size'))),
  op('download (error: missing)', async (c) => st(await b(c).download('folder/missing.txt')), (v) => (v.error ? null : 'expected an error')),
  op('info', async (c) => st(await b(c).info('folder/a.txt'))),
  op('exists', async (c) => st(await b(c).exists('folder/a.txt')), all(ok, (v) => (v.data === true ? null : 'expected true'))),
  op('exists (missing)', async (c) => st(await b(c).exists('folder/nope.txt')), (v) => (v.data === false ? null : `expected false: ${JSON.stringify(v)}`)),
  op('list', async (c) => st(await b(c).list('folder')), all(ok, (v) => (v.data.length === 2 ? null : `expected 2 entries, got ${JSON.stringify(v.data)}`))),
  op('list root', async (c) => st(await b(c).list())),
  op('list with options', async (c) => st(await b(c).list('folder', { limit: 1, offset: 0, sortBy: { column: 'name', order: 'desc' }, search: 'a' }))),
  op('update', async (c) => st(await b(c).update('folder/a.txt', Buffer.from('updated content'), { contentType: 'text/plain' }))),
  op('download after update', async (c) => st(await b(c).download('folder/a.txt')),
    all(ok, (v) => (v.data.blob.text === 'updated content' ? null : 'not updated'))),
  op('move', async (c) => st(await b(c).move('folder/a.txt', 'folder/moved.txt'))),
  op('copy', async (c) => st(await b(c).copy('folder/moved.txt', 'folder/copy.txt'))),
  op('download after move and copy', async (c) => ({
    moved: await st(await b(c).download('folder/moved.txt')),
    copy: await st(await b(c).download('folder/copy.txt')),
    old: await st(await b(c).download('folder/a.txt')),
  }), (v) => (!v.moved.error && !v.copy.error && v.old.error ? null : 'move/copy not effective')),

  op('createSignedUrl', async (c) => {
    const v = await st(await b(c).createSignedUrl('folder/moved.txt', 60));
    c.s.signed = v.data && v.data.signedUrl;
    return v;
  }, all(ok, (v, c) => under(c.base, v.data.signedUrl))),
  op('createSignedUrl fetched with no key', async (c) => fetchDesc(c.s.signed), fetched(200, 'updated content')),
  op('createSignedUrl (download option) fetched', async (c) => {
    const r = await b(c).createSignedUrl('folder/moved.txt', 60, { download: 'saved.txt' });
    return { result: await st(r), fetched: r.data ? await fetchDesc(r.data.signedUrl) : null };
  }, (v) => (v.fetched && v.fetched.status === 200 && /attachment/.test(v.fetched['content-disposition'] || '') ? null : `no attachment: ${JSON.stringify(v.fetched)}`)),
  op('createSignedUrl (error: missing object)', async (c) => st(await b(c).createSignedUrl('folder/missing.txt', 60)), (v) => (v.error ? null : 'expected an error')),
  op('createSignedUrl fetched with a bad token (error)', async (c) =>
    fetchDesc(c.s.signed.replace(/token=[^&]+/, 'token=eyJhbGciOiJIUzI1NiJ9.e30.invalid')), (v) => (v.status >= 400 ? null : `expected an error, got ${v.status}`)),
  op('createSignedUrls', async (c) => {
    const v = await st(await b(c).createSignedUrls(['folder/moved.txt', 'folder/copy.txt', 'folder/missing.txt'], 60));
    c.s.signedMany = (v.data || []).map((x) => x.signedUrl);
    return v;
  }, all(ok, (v, c) => under(c.base, v.data[0] && v.data[0].signedUrl) || under(c.base, v.data[1] && v.data[1].signedUrl))),
  op('createSignedUrls fetched with no key', async (c) =>
    Promise.all(c.s.signedMany.filter(Boolean).map((u) => fetchDesc(u))),
  (v) => (v.length === 2 && v.every((x) => x.status === 200) ? null : `fetches failed: ${JSON.stringify(v)}`)),
  op('createSignedUploadUrl', async (c) => {
    const v = await st(await b(c).createSignedUploadUrl('folder/up.txt'));
    c.s.upload = v.data;
    return v;
  }, all(ok, (v, c) => under(c.base, v.data.signedUrl))),
  op('uploadToSignedUrl', async (c) => st(await b(c).uploadToSignedUrl('folder/up.txt', c.s.upload.token, Buffer.from('signed upload'), { contentType: 'text/plain' }))),
  op('uploadToSignedUrl (error: already exists)', async (c) =>
    st(await b(c).uploadToSignedUrl('folder/up.txt', c.s.upload.token, Buffer.from('again'), { contentType: 'text/plain' })), (v) => (v.error ? null : 'expected an error')),
  op('download the signed upload', async (c) => st(await b(c).download('folder/up.txt')),
    all(ok, (v) => (v.data.blob.text === 'signed upload' ? null : 'wrong content'))),
  op('createSignedUploadUrl (upsert) + uploadToSignedUrl', async (c) => {
    const s = await b(c).createSignedUploadUrl('folder/up.txt', { upsert: true });
    if (s.error) return { sign: await st(s) };
    return { sign: await st(s), upload: await st(await b(c).uploadToSignedUrl('folder/up.txt', s.data.token, Buffer.from('overwritten'), { contentType: 'text/plain', upsert: true })) };
  }, (v) => (v.upload && !v.upload.error ? null : `failed: ${JSON.stringify(v)}`)),

  op('getPublicUrl', async (c) => {
    const up = await st(await b(c, PUB).upload('docs/readme.txt', Buffer.from('public file'), { contentType: 'text/plain' }));
    const r = b(c, PUB).getPublicUrl('docs/readme.txt');
    c.s.publicUrl = r.data.publicUrl;
    return { upload: up, url: r.data };
  }, (v, c) => (v.upload.error ? `upload failed ${JSON.stringify(v.upload.error)}` : under(c.base, v.url.publicUrl))),
  op('getPublicUrl fetched with no key', async (c) => fetchDesc(c.s.publicUrl), fetched(200, 'public file')),
  op('getPublicUrl (download) fetched', async (c) => fetchDesc(b(c, PUB).getPublicUrl('docs/readme.txt', { download: true }).data.publicUrl),
    (v) => (v.status === 200 && /attachment/.test(v['content-disposition'] || '') ? null : `no attachment: ${JSON.stringify(v)}`)),
  op('getPublicUrl of a private bucket fetched (error)', async (c) => fetchDesc(b(c).getPublicUrl('folder/moved.txt').data.publicUrl),
    (v) => (v.status >= 400 ? null : `expected an error, got ${v.status}`)),

  op('remove', async (c) => st(await b(c).remove(['folder/copy.txt', 'folder/up.txt', 'folder/none.txt'])),
    all(ok, (v) => (Array.isArray(v.data) && v.data.length === 2 ? null : `expected 2 removed: ${JSON.stringify(v.data)}`))),
  op('createSignedUrl of a removed object fetched (error)', async (c) => fetchDesc(c.s.signedMany[1]),
    (v) => (v.status >= 400 ? null : `removed object still served: ${v.status}`)),
  op('createSignedUrl again, fetched', async (c) => {
    const r = await b(c).createSignedUrl('folder/moved.txt', 60);
    return { result: await st(r), fetched: r.data ? await fetchDesc(r.data.signedUrl) : null };
  }, (v) => (v.fetched && v.fetched.status === 200 ? null : `not served: ${JSON.stringify(v)}`)),
  op('list after remove', async (c) => st(await b(c).list('folder'))),
  op('deleteBucket (error: not empty)', async (c) => st(await c.s.user.storage.deleteBucket(PUB)), errCode('409')),
  op('emptyBucket', async (c) => st(await c.s.user.storage.emptyBucket(PUB))),
  op('deleteBucket', async (c) => st(await c.s.user.storage.deleteBucket(PUB))),
  op('deleteBucket (empty temp)', async (c) => st(await c.s.user.storage.deleteBucket(TMP))),
  op('deleteBucket (error: missing)', async (c) => st(await c.s.user.storage.deleteBucket('conf-missing')), errCode('404')),
  op('listBuckets after delete', async (c) => st(await c.s.user.storage.listBuckets()),
    all(ok, (v) => (v.data.length === 1 ? null : `expected 1 bucket, got ${v.data.length}`))),
];
