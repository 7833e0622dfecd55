import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACTIVE, DEVICE, issueLicenseFile, KEY, LICENSE, signResponse, type Signer } from './issuer.js';

/**
 * A small stateful stand-in for Keymint's public license API on a real port,
 * signing its responses with node:crypto the way docs/formats.md says. The
 * knobs make it misbehave the ways an attacker or a bad network would.
 */
export interface Captured {
  path: string;
  nonce: string | null;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export class FakeKeymint {
  url = '';
  /** Unix seconds the server believes it is. */
  now = 1767225600 + 3600;
  /** Who signs: the real key, an impostor, or nobody. */
  signer: Signer | null = ACTIVE;
  /** Sign a different path than the one requested (a response lifted from another endpoint). */
  signedPathOverride: string | null = null;
  /** Answer every request with this captured response (a replay). */
  replay: Captured | null = null;
  /** Edit the body after signing (a man in the middle). */
  tamperBody: ((body: Buffer) => Buffer) | null = null;
  delayMs = 0;
  failWith: number | null = null;
  licenseStatus: 'active' | 'revoked' | 'suspended' = 'active';
  readonly devices = new Map<string, Record<string, unknown>>();
  readonly requests: Array<{ path: string; body: Record<string, unknown>; headers: IncomingMessage['headers'] }> = [];
  readonly responses: Captured[] = [];
  private server: Server | null = null;

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
    const path = (req.url ?? '/').split('?')[0]!;
    this.requests.push({ path, body, headers: req.headers });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (res.destroyed) return;

    if (this.replay) return this.send(res, this.replay.status, this.replay.body, this.replay.headers);
    if (this.failWith) return this.send(res, this.failWith, Buffer.from('<html>bad gateway</html>'), { 'content-type': 'text/html' });

    const [status, payload] = this.route(path, body);
    const raw = Buffer.from(JSON.stringify(payload), 'utf8');
    const nonce = req.headers['keymint-accept-signature'];
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (typeof nonce === 'string' && this.signer) {
      headers['keymint-signature'] = signResponse({ method: req.method!, path: this.signedPathOverride ?? path, t: this.now, nonce, body: raw, signer: this.signer });
    }
    const sent = this.tamperBody ? this.tamperBody(raw) : raw;
    this.responses.push({ path, nonce: typeof nonce === 'string' ? nonce : null, status, headers, body: sent });
    this.send(res, status, sent, headers);
  }

  private send(res: ServerResponse, status: number, body: Buffer, headers: Record<string, string>): void {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }

  private license() {
    return { ...LICENSE, status: this.licenseStatus, active_devices: this.devices.size };
  }

  private route(path: string, body: Record<string, unknown>): [number, unknown] {
    const error = (status: number, type: string, code: string, message: string) => [status, { error: { type, code, message, param: null, request_id: 'req_test' } }] as [number, unknown];
    if (body.key !== KEY) {
      if (path === '/v1/licenses/validate') return [200, this.validation(false, 'NOT_FOUND', 'no such license', null, null)];
      return error(404, 'not_found_error', 'license_not_found', 'no such license');
    }
    const fingerprint = typeof body.fingerprint === 'string' ? body.fingerprint : undefined;
    const device = fingerprint ? (this.devices.get(fingerprint) ?? null) : null;
    switch (path) {
      case '/v1/licenses/validate': {
        if (this.licenseStatus === 'revoked') return [200, this.validation(false, 'REVOKED', 'the license was revoked', this.license(), device)];
        if (this.licenseStatus === 'suspended') return [200, this.validation(false, 'SUSPENDED', 'the license is suspended', this.license(), device)];
        if (fingerprint && !device) return [200, this.validation(false, 'DEVICE_NOT_ACTIVATED', 'this device is not activated', this.license(), null)];
        return [200, this.validation(true, 'VALID', 'valid', this.license(), device)];
      }
      case '/v1/licenses/activate': {
        if (this.licenseStatus !== 'active') return error(403, 'permission_error', 'license_not_active', 'the license is not active');
        if (device) return [200, device];
        const created = { ...DEVICE, fingerprint: fingerprint!, name: body.name ?? null, platform: body.platform ?? null, created: this.now };
        this.devices.set(fingerprint!, created);
        return [201, created];
      }
      case '/v1/licenses/deactivate':
        if (!device) return error(404, 'not_found_error', 'device_not_found', 'no such device');
        this.devices.delete(fingerprint!);
        return [200, { id: device.id, object: 'device', deleted: true }];
      case '/v1/licenses/heartbeat':
        if (!device) return error(404, 'not_found_error', 'device_not_found', 'no such device');
        return [200, { ...device, lease_expires_at: this.now + 600 }];
      case '/v1/licenses/checkout': {
        if (this.licenseStatus !== 'active') return error(403, 'permission_error', 'license_not_active', 'the license is not active');
        if (fingerprint && !device) return error(403, 'permission_error', 'device_not_activated', 'this device is not activated');
        const ttl = typeof body.ttl === 'number' ? body.ttl : 1_209_600;
        const payload = { license: this.license(), device, issued: this.now, expires: this.now + ttl, ttl };
        const certificate = issueLicenseFile(payload, body.encrypt ? { encryptFor: { key: KEY, ...(device && { fingerprint }) } } : {});
        return [200, { object: 'license_file', certificate, issued: payload.issued, expires: payload.expires }];
      }
      default:
        return error(404, 'invalid_request_error', 'route_not_found', 'no such route');
    }
  }

  private validation(valid: boolean, code: string, message: string, license: unknown, device: unknown) {
    return { object: 'license_validation', valid, code, message, license, device, ts: this.now };
  }
}
