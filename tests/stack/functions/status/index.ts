// status: answers with the status in ?code= (default 500) and a JSON error
// body {"error": "status <code>", "code": <code>} (no body for 204/205/304).
// ?retry_after=S adds Retry-After; ?relay=1 adds x-relay-error: true.
export default (req: Request): Response => {
  const q = new URL(req.url).searchParams;
  let code = Number(q.get('code') ?? '500');
  if (!Number.isInteger(code) || code < 200 || code > 599) code = 400;
  const headers = new Headers();
  if (q.has('retry_after')) headers.set('retry-after', q.get('retry_after')!);
  if (q.get('relay') === '1') headers.set('x-relay-error', 'true');
  if (code === 204 || code === 205 || code === 304) return new Response(null, { status: code, headers });
  headers.set('content-type', 'application/json');
  return new Response(JSON.stringify({ error: `status ${code}`, code }), { status: code, headers });
};
