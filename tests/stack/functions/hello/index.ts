// hello: {"name": "X"} (JSON body, or ?name=X) -> {"message": "Hello X!"}
export default async (req: Request): Promise<Response> => {
  let name = new URL(req.url).searchParams.get('name') ?? 'world';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const text = await req.text();
    if (text.length > 0) {
      try {
        const body = JSON.parse(text);
        if (body && typeof body.name === 'string') name = body.name;
      } catch {
        return Response.json({ error: 'body is not JSON' }, { status: 400 });
      }
    }
  }
  return Response.json({ message: `Hello ${name}!` });
};
