// binary: application/octet-stream, ?size=N bytes (default 256, max 2 GiB),
// byte i = i mod 256, streamed in 64 KiB chunks. x-fnv1a32 header carries the
// FNV-1a 32-bit hash of the whole body as 8 hex digits (see sink).
const CHUNK = 65536;

function fnv1a(h: number, buf: Uint8Array): number {
  for (let i = 0; i < buf.length; i++) h = Math.imul(h ^ buf[i], 0x01000193) >>> 0;
  return h;
}

export default (req: Request): Response => {
  const size = Math.min(Number(new URL(req.url).searchParams.get('size') ?? '256') || 0, 2 ** 31);
  // Since CHUNK is a multiple of 256 every full chunk is identical.
  const block = new Uint8Array(CHUNK).map((_, i) => i & 0xff);
  let hash = 0x811c9dc5;
  for (let off = 0; off < size; off += CHUNK) hash = fnv1a(hash, block.subarray(0, Math.min(CHUNK, size - off)));
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (sent >= size) { ctl.close(); return; }
      const n = Math.min(CHUNK, size - sent);
      ctl.enqueue(block.slice(0, n));
      sent += n;
    },
  });
  return new Response(body, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'x-fnv1a32': hash.toString(16).padStart(8, '0'),
    },
  });
};
