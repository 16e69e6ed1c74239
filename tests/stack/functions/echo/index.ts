// echo: returns what arrived, so tests can check what supagate sent upstream.
// {"method","path","query":{k:v|[v..]},"url","headers":{lowercase:v},
//  "body": utf-8 text, "body_length": bytes, "body_base64": only if not utf-8}
export default async (req: Request): Promise<Response> => {
  const url = new URL(req.url);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of req.headers) headers[k] = v;
  const bytes = new Uint8Array(await req.arrayBuffer());
  let body: string | null = null;
  let body_base64: string | undefined;
  try {
    body = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    body_base64 = btoa(bin);
  }
  return Response.json({
    method: req.method,
    path: url.pathname,
    query,
    raw_query: url.search.replace(/^\?/, ''),
    headers,
    body,
    body_length: bytes.length,
    ...(body_base64 !== undefined ? { body_base64 } : {}),
  });
};
