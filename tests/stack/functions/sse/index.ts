// sse: text/event-stream with 3 events 200 ms apart (?count=N, ?interval=ms).
export default (req: Request): Response => {
  const q = new URL(req.url).searchParams;
  const count = Math.min(Number(q.get('count') ?? '3') || 3, 1000);
  const interval = Math.min(Number(q.get('interval') ?? '200') || 0, 60000);
  const enc = new TextEncoder();
  let i = 0;
  let timer: number | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      const tick = () => {
        i++;
        ctl.enqueue(enc.encode(`id: ${i}\nevent: tick\ndata: {"n":${i},"t":${Date.now()}}\n\n`));
        if (i >= count) ctl.close();
        else timer = setTimeout(tick, interval);
      };
      tick();
    },
    cancel() { clearTimeout(timer); },
  });
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  });
};
