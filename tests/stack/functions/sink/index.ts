// sink: consumes the request body as a stream without keeping it, answers
// {"bytes": N, "fnv1a32": "8 hex digits"} (for large upload tests).
export default async (req: Request): Promise<Response> => {
  let bytes = 0;
  let h = 0x811c9dc5;
  if (req.body) {
    for await (const chunk of req.body) {
      bytes += chunk.length;
      for (let i = 0; i < chunk.length; i++) h = Math.imul(h ^ chunk[i], 0x01000193) >>> 0;
    }
  }
  return Response.json({ bytes, fnv1a32: h.toString(16).padStart(8, '0') });
};
