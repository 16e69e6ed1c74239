// public: deployed with verify_jwt off: runs without any Authorization.
export const verifyJwt = false;

export default (req: Request): Response =>
  Response.json({
    public: true,
    method: req.method,
    path: new URL(req.url).pathname,
    authorization: req.headers.get('authorization'),
    apikey: req.headers.get('apikey'),
  });
