import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The Set-Cookie headers of this reply, as sent. */
  setCookies: string[];
}

/**
 * A browser whose requests reach the platform as a reverse proxy forwards
 * them: over plain HTTP from the proxy's address (`from`, bound as the local
 * address of the connection), with the headers the proxy adds. It keeps its
 * cookies itself and sends them whatever their Secure flag says, because the
 * browser did speak https to the proxy. (supertest's agent would drop Secure
 * cookies on an http connection.)
 */
export class BrowserBehindProxy {
  private cookies = new Map<string, string>();

  constructor(
    private readonly baseUrl: string,
    private readonly proxy: { from: string; headers: Record<string, string> },
  ) {}

  get(path: string): Promise<Reply> {
    return this.send('GET', path);
  }

  /** Posts an HTML form (application/x-www-form-urlencoded). */
  postForm(path: string, form: Record<string, string>): Promise<Reply> {
    return this.send('POST', path, new URLSearchParams(form).toString());
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  private send(method: string, path: string, body?: string): Promise<Reply> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { Accept: 'text/html', ...this.proxy.headers };
    if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (body !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, localAddress: this.proxy.from, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const setCookies = res.headers['set-cookie'] ?? [];
            for (const line of setCookies) {
              const [pair = ''] = line.split(';');
              const at = pair.indexOf('=');
              this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), setCookies });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** The attributes of the named cookie in a reply's Set-Cookie headers, lower-cased; undefined when it sets none. */
export function cookieAttributes(reply: Reply, name: string): string[] | undefined {
  const line = reply.setCookies.find((c) => c.startsWith(`${name}=`));
  return line?.split(';').slice(1).map((part) => part.trim().toLowerCase());
}
