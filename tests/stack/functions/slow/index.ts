// slow: waits ?ms= milliseconds (default 1000, max 600000), then
// {"slept_ms": N}. Stops early if the client goes away.
export default async (req: Request): Promise<Response> => {
  const ms = Math.max(0, Math.min(Number(new URL(req.url).searchParams.get('ms') ?? '1000') || 0, 600000));
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    req.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); });
  });
  return Response.json({ slept_ms: ms });
};
