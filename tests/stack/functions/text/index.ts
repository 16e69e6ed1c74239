// text: a plain-text answer.
export default (_req: Request): Response =>
  new Response('Hello from a text function\n', {
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
