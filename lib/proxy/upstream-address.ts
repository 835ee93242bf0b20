import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Where the proxy forwards to, and the header rewrites that keep a client talking to the proxy: upload
 * `Location`s and token `realm`s that name the upstream are turned into the proxy's own address; anything on
 * another host (an S3 redirect, a separate token service) is left alone, so pulls redirected to S3 go there directly.
 */
export class UpstreamAddress {
  readonly origin: string;
  /** A path prefix of the upstream URL (an API Gateway stage), without a trailing slash; usually empty. */
  readonly prefix: string;
  readonly url: URL;

  constructor(upstream: string) {
    let url: URL;
    try {
      url = new URL(upstream);
    } catch {
      throw new Error(`--upstream must be a URL like https://registry.example.com or http://127.0.0.1:5000, got "${upstream}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--upstream must be http:// or https://, got "${upstream}"`);
    if (url.search || url.hash) throw new Error(`--upstream takes no query or fragment, got "${upstream}"`);
    this.url = url;
    this.origin = url.origin;
    this.prefix = url.pathname.replace(/\/+$/, '');
  }

  /** The upstream URL for a client-side path and query (`/v2/…?…`). */
  resolve(pathAndQuery: string): URL {
    return new URL(`${this.prefix}${pathAndQuery}`, this.origin);
  }

  /**
   * A URL the upstream sent (absolute, or relative to the upstream), as a client-side path and query when it points
   * at the upstream; undefined when it points elsewhere.
   */
  toProxyPath(value: string): string | undefined {
    let url: URL;
    try {
      url = new URL(value, `${this.origin}${this.prefix}/`);
    } catch {
      return undefined;
    }
    if (url.origin !== this.origin) return undefined;
    const path = this.prefix && url.pathname.startsWith(`${this.prefix}/`) ? url.pathname.slice(this.prefix.length) : url.pathname;
    return `${path}${url.search}`;
  }

  /** `Location` for the client: relative stays relative, absolute becomes the proxy's origin; other hosts unchanged. */
  rewriteLocation(value: string, proxyOrigin: string): string {
    const path = this.toProxyPath(value);
    if (path === undefined) return value;
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `${proxyOrigin}${path}` : path;
  }

  /** `realm="<upstream>/token"` → `realm="<proxy>/token"` in a WWW-Authenticate header. */
  rewriteChallenge(value: string, proxyOrigin: string): { header: string; realmPath?: string } {
    let realmPath: string | undefined;
    const header = value.replace(/realm="([^"]*)"/gi, (whole, realm: string) => {
      if (!/^https?:\/\//i.test(realm)) return whole;
      const path = this.toProxyPath(realm);
      if (path === undefined) return whole;
      realmPath = new URL(path, 'http://x').pathname;
      return `realm="${proxyOrigin}${path}"`;
    });
    return realmPath === undefined ? { header } : { header, realmPath };
  }
}

/** RFC 9110 §7.6.1: headers about one connection, never forwarded; plus those the Connection header names. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Request headers to send upstream: all but hop-by-hop, `Host` (the upstream's own is used) and `Expect` (answered here). */
export function forwardableHeaders(headers: IncomingHttpHeaders, drop: string[] = []): OutgoingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name) || name === 'host' || name === 'expect' || drop.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Response headers to send back: all but hop-by-hop. */
export function returnableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return forwardableHeaders(headers);
}
