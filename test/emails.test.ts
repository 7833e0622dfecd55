import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { escapeHtml, html, paragraphs } from '../src/delivery/templates.js';
import { seedLicense, startServer, type TestServer, waitFor } from './support/harness.js';
import { smtpCatcher, type SmtpCatcher } from './support/smtp.js';


const htmlOf = (m: ParsedMail) => (typeof m.html === 'string' ? m.html : '');
const toOf = (m: ParsedMail) => (Array.isArray(m.to) ? m.to : m.to ? [m.to] : []).flatMap((a) => a.value.map((v) => v.address));
const hrefs = (html: string) => [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));

describe('emails over SMTP', () => {
  let server: TestServer;
  let smtp: SmtpCatcher;
  let scope: { accountId: string; env: 'test' };

  beforeAll(async () => {
    smtp = await smtpCatcher();
    server = await startServer({ env: { KEYMINT_SMTP_URL: smtp.url, KEYMINT_MAIL_FROM: 'Acme Licensing <licenses@acme.test>', KEYMINT_PUBLIC_URL: 'https://licenses.acme.test' } });
    scope = { accountId: await server.app.services.accounts.ensureDefaultAccount(), env: 'test' };
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.stop();
  });

  /** The message that carried this email (matched by its Message-ID). */
  const received = async (email: { message_id: string }) => {
    await waitFor(() => smtp.messages.some((m) => m.messageId === email.message_id));
    return smtp.messages.find((m) => m.messageId === email.message_id)!;
  };
  const emailOf = async (licenseId: string) => (await server.request('GET', `/v1/emails?license=${licenseId}`)).body.data as any[];

  it('delivers the key after `send_email: true`, with the product settings, in both parts', async () => {
    const { license, product } = await seedLicense(server, {
      product: {
        name: 'Pixel Editor',
        email: {
          subject: 'Your Pixel Editor key is here',
          thank_you: 'Thanks for supporting an indie developer!',
          purchase_notes: 'Install: download, unzip, paste the key.\nQuestions? support@acme.test',
          button_label: 'Download Pixel Editor',
          button_url: 'https://acme.test/download?os=mac&v=2',
        },
      },
      policy: { license_type: 'timed', duration: '1y' },
      license: { customer: { email: 'Jane@Example.com', name: 'Jane Doe' }, send_email: true },
    });
    expect(product.email).toMatchObject({ subject: 'Your Pixel Editor key is here', send_payment_failed: false, expiring_soon_days: 7 });

    const [email] = await emailOf(license.id);
    expect(email).toMatchObject({ object: 'email', kind: 'license_delivery', to: 'jane@example.com', licenses: [license.id], product: product.id });
    const mail = await received(email);
    expect(toOf(mail)).toEqual(['jane@example.com']);
    expect(smtp.envelopes[smtp.messages.indexOf(mail)]).toEqual(['jane@example.com']);
    expect(mail.from?.value).toEqual([{ name: 'Acme Licensing', address: 'licenses@acme.test' }]);
    expect(mail.subject).toBe('Your Pixel Editor key is here');
    expect(mail.messageId).toMatch(/^<eml_[0-9a-z]{26}@licenses\.acme\.test>$/);
    // The key in both parts, and every link.
    expect(mail.text).toContain(license.key);
    expect(htmlOf(mail)).toContain(license.key);
    expect(mail.text).toContain('Hi Jane Doe,');
    expect(mail.text).toContain('Thanks for supporting an indie developer!');
    expect(mail.text).toContain('Questions? support@acme.test');
    expect(mail.text).toContain('Download Pixel Editor: https://acme.test/download?os=mac&v=2');
    expect(mail.text).toContain('https://licenses.acme.test/portal');
    expect(hrefs(htmlOf(mail))).toEqual(['https://acme.test/download?os=mac&v=2', 'https://licenses.acme.test/portal']);
    expect(htmlOf(mail)).toContain('Download Pixel Editor</a>');
    expect(mail.text).toMatch(/valid until \w+ \d+, \d{4}/);

    await waitFor(async () => (await emailOf(license.id))[0].status === 'sent');
    const sent = (await server.request('GET', `/v1/emails/${email.id}`)).body;
    expect(sent).toMatchObject({ status: 'sent', transport: 'smtp', attempts: 1, last_error: null, subject: 'Your Pixel Editor key is here', livemode: false });
    expect(sent.sent_at).toBeTypeOf('number');
    // The key is not in the delivery log, nor in the job.
    const rows = await server.db.kysely.selectFrom('emails').selectAll().where('id', '=', email.id).execute();
    expect(JSON.stringify(rows)).not.toContain(license.key);
  });

  it('escapes what vendors and customers typed: HTML stays text', async () => {
    const { license } = await seedLicense(server, {
      product: { name: '<script>alert(1)</script> & Co', email: { thank_you: 'Thanks <b>a lot</b>', purchase_notes: '<img src=x onerror=alert(2)>' } },
      license: { customer: { email: 'mallory@example.com', name: '"><svg onload=alert(3)>' }, send_email: true },
    });
    const [email] = await emailOf(license.id);
    const mail = await received(email);
    const html = htmlOf(mail);
    expect(mail.subject).toBe('Your license key for <script>alert(1)</script> & Co');
    expect(html).not.toMatch(/<script|<b>|<img|<svg/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co');
    expect(html).toContain('Thanks &lt;b&gt;a lot&lt;/b&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
    expect(html).toContain('Hi &quot;&gt;&lt;svg onload=alert(3)&gt;,');
    // The text part is text: as typed.
    expect(mail.text).toContain('Thanks <b>a lot</b>');
    expect(html).toContain(license.key);
  });

  it('refuses `send_email` for a license without a customer, and creates nothing', async () => {
    const { policy } = await seedLicense(server);
    const before = (await server.request('GET', `/v1/licenses?limit=100`)).body.data.length;
    const res = await server.request('POST', '/v1/licenses', { body: { policy: policy.id, send_email: true } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'customer_email_missing', param: 'customer' });
    expect((await server.request('GET', `/v1/licenses?limit=100`)).body.data.length).toBe(before);
    expect((await server.request('POST', '/v1/licenses', { body: { policy: policy.id, send_email: 'yes' } })).status).toBe(400);
  });

  it('re-sends a license: the same key, re-derived, in a new message', async () => {
    const { license } = await seedLicense(server, { license: { customer: { email: 'resend@example.com' } } });
    expect(await emailOf(license.id)).toHaveLength(0);
    const first = await server.request('POST', `/v1/licenses/${license.id}/send_email`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ object: 'email', status: 'queued', to: 'resend@example.com', licenses: [license.id], subject: 'Your license key for Editor' });
    const second = await server.request('POST', `/v1/licenses/${license.id}/send_email`);
    expect(second.body.message_id).not.toBe(first.body.message_id);
    const [a, b] = [await received(first.body), await received(second.body)];
    expect(a.text).toContain(license.key);
    expect(b.text).toContain(license.key);
    expect(b.text).toContain('Hello,');

    expect((await server.request('POST', '/v1/licenses/lic_missing/send_email')).status).toBe(404);
    const { license: anonymous } = await seedLicense(server);
    expect((await server.request('POST', `/v1/licenses/${anonymous.id}/send_email`)).body.error.code).toBe('customer_email_missing');
    await server.request('POST', `/v1/licenses/${license.id}/revoke`);
    const revoked = await server.request('POST', `/v1/licenses/${license.id}/send_email`);
    expect(revoked.status).toBe(409);
    expect(revoked.body.error.code).toBe('license_revoked');
    expect((await server.request('POST', `/v1/licenses/${license.id}/send_email`, { body: { to: 'x@example.com' } })).status).toBe(400);
  });

  it('one email lists every license of a purchase, once per dedupe key', async () => {
    const { policy } = await seedLicense(server, { product: { name: 'Bundle' } });
    const a = (await server.request('POST', '/v1/licenses', { body: { policy: policy.id, customer: { email: 'buyer@example.com' } } })).body;
    const b = (await server.request('POST', '/v1/licenses', { body: { policy: policy.id, customer: { email: 'buyer@example.com' } } })).body;
    const { emails } = server.app.services;
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await server.db.kysely.transaction().execute((trx) => emails.enqueueLicenseDelivery(trx, scope, [a.id, b.id], { dedupeKey: 'checkout:cs_test_1' })));
    }
    expect(results[0]).toMatchObject({ subject: 'Your license keys for Bundle', licenses: [a.id, b.id] });
    expect(results.slice(1)).toEqual([null, null]);
    const mail = await received(results[0]!);
    expect(mail.text).toContain(a.key);
    expect(mail.text).toContain(b.key);
    expect(mail.text).toContain('Here are your 2 license keys:');
    expect(await emailOf(b.id)).toHaveLength(1);
    // A license without a customer has nobody to send to: nothing is enqueued (Stripe handlers must not fail on it).
    const { license: anonymous } = await seedLicense(server);
    expect(await server.db.kysely.transaction().execute((trx) => emails.enqueueLicenseDelivery(trx, scope, [anonymous.id]))).toBeNull();
  });

  it('payment-failed notices are off by default and per product', async () => {
    const { emails } = server.app.services;
    const off = await seedLicense(server, { product: { name: 'Quiet' }, license: { customer: { email: 'quiet@example.com' } } });
    expect(await server.db.kysely.transaction().execute((trx) => emails.enqueuePaymentFailed(trx, scope, off.license.id, { dedupeKey: 'in_1' }))).toBeNull();

    const on = await seedLicense(server, { product: { name: 'Loud', email: { send_payment_failed: true } }, license: { customer: { email: 'loud@example.com', name: 'Lou' } } });
    const email = await server.db.kysely.transaction().execute((trx) => emails.enqueuePaymentFailed(trx, scope, on.license.id, { dedupeKey: 'in_2' }));
    expect(email).toMatchObject({ kind: 'payment_failed', to: 'loud@example.com', subject: 'Your payment for Loud failed' });
    expect(await server.db.kysely.transaction().execute((trx) => emails.enqueuePaymentFailed(trx, scope, on.license.id, { dedupeKey: 'in_2' }))).toBeNull();
    const mail = await received(email!);
    expect(mail.text).toContain('Hi Lou,');
    expect(hrefs(htmlOf(mail))).toEqual(['https://licenses.acme.test/portal']);
  });

  it('sends a magic link without keeping its token in the clear', async () => {
    const url = 'https://licenses.acme.test/portal/login?token=tok_secret_123&x=1';
    const email = await server.db.kysely.transaction().execute((trx) =>
      server.app.services.emails.enqueueMagicLink(trx, scope, 'Portal@Example.com', url, { expiresAt: server.clock.now() + 900 }),
    );
    expect(email).toMatchObject({ kind: 'magic_link', to: 'portal@example.com', subject: 'Your sign-in link', licenses: [] });
    const mail = await received(email!);
    expect(mail.text).toContain(url);
    expect(hrefs(htmlOf(mail))).toEqual([url]);
    const rows = await server.db.kysely.selectFrom('emails').selectAll().where('id', '=', email!.id).execute();
    const jobs = await server.db.kysely.selectFrom('jobs').selectAll().where('payload', 'like', `%${email!.id}%`).execute();
    expect(JSON.stringify([rows, jobs])).not.toContain('tok_secret_123');
  });

  it('a recipient the server refuses for good fails at once, logged', async () => {
    const { license } = await seedLicense(server, { license: { customer: { email: 'bounce@example.com' }, send_email: true } });
    await waitFor(async () => (await emailOf(license.id))[0].status === 'failed');
    const [email] = await emailOf(license.id);
    expect(email.attempts).toBe(1);
    expect(email.last_error).toContain('550');
    const job = (await server.request('GET', '/v1/jobs?type=email.send&state=dead')).body.data;
    expect(job).toHaveLength(1);
  });

  it('lists emails with filters and refuses bad ones', async () => {
    const all = (await server.request('GET', '/v1/emails?limit=100')).body.data as any[];
    expect(all.length).toBeGreaterThan(5);
    const byTo = (await server.request('GET', '/v1/emails?to=LOUD@example.com')).body.data as any[];
    expect(byTo.map((e) => e.kind)).toEqual(['payment_failed']);
    const magic = (await server.request('GET', '/v1/emails?kind=magic_link')).body.data as any[];
    expect(magic).toHaveLength(1);
    expect((await server.request('GET', '/v1/emails?status=failed')).body.data).toHaveLength(1);
    expect((await server.request('GET', '/v1/emails?status=lost')).status).toBe(400);
    expect((await server.request('GET', '/v1/emails?kind=spam')).status).toBe(400);
    expect((await server.request('GET', '/v1/emails?license=lic_%25')).body.data).toHaveLength(0);
    expect((await server.request('GET', '/v1/emails/eml_missing')).status).toBe(404);
    // Another environment sees none of them.
    expect((await server.request('GET', '/v1/emails', { key: server.liveKey })).body.data).toHaveLength(0);
    expect((await server.request('GET', `/v1/emails/${all[0].id}`, { key: server.liveKey })).status).toBe(404);
  });

  it('validates and merges product email settings', async () => {
    const created = await server.request('POST', '/v1/products', { body: { name: 'Settings', email: { button_url: 'https://acme.test/dl', expiring_soon_days: 14 } } });
    expect(created.body.email).toEqual({
      subject: null,
      thank_you: null,
      purchase_notes: null,
      button_label: null,
      button_url: 'https://acme.test/dl',
      send_payment_failed: false,
      expiring_soon_days: 14,
    });
    const updated = await server.request('POST', `/v1/products/${created.body.id}`, { body: { email: { subject: 'Hello', button_url: null } } });
    expect(updated.body.email).toMatchObject({ subject: 'Hello', button_url: null, expiring_soon_days: 14 });
    for (const email of [
      { button_url: 'javascript:alert(1)' },
      { button_url: 'not a url' },
      { subject: 'two\nlines' },
      { expiring_soon_days: 366 },
      { expiring_soon_days: -1 },
      { send_payment_failed: 'yes' },
      { thank_you: 'x'.repeat(2001) },
      { colour: 'blue' },
    ]) {
      const res = await server.request('POST', `/v1/products/${created.body.id}`, { body: { email } });
      expect(res.status, JSON.stringify(email)).toBe(400);
    }
  });

  it("previews a product's templates with sample data", async () => {
    const product = (await server.request('POST', '/v1/products', { body: { name: 'Preview <Pro>', code: 'preview', email: { thank_you: 'Cheers!' } } })).body;
    const res = await server.request('GET', `/v1/products/preview/email_preview`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'email_preview', template: 'license_delivery', from: 'Acme Licensing <licenses@acme.test>', subject: 'Your license key for Preview <Pro>' });
    expect(res.body.html).toContain('Preview &lt;Pro&gt;');
    expect(res.body.text).toContain('Cheers!');
    expect(res.body.text).toMatch(/KM1\./);
    for (const template of ['expiring_soon', 'payment_failed', 'magic_link']) {
      const t = await server.request('GET', `/v1/products/${product.id}/email_preview?template=${template}`);
      expect(t.status).toBe(200);
      expect(t.body.template).toBe(template);
      expect(t.body.html).toContain('<!doctype html>');
      expect(t.body.text.length).toBeGreaterThan(20);
    }
    expect((await server.request('GET', `/v1/products/${product.id}/email_preview?template=invoice`)).status).toBe(400);
    expect((await server.request('GET', `/v1/products/pdt_missing/email_preview`)).status).toBe(404);
    // Nothing was sent or logged by a preview.
    expect((await server.request('GET', '/v1/emails?limit=100')).body.data.some((e: any) => e.subject.includes('Preview'))).toBe(false);
  });
});

describe('SMTP outages', () => {
  it('retries while the server is down and delivers once it is back', async () => {
    const smtp = await smtpCatcher({ start: false });
    const server = await startServer({ env: { KEYMINT_SMTP_URL: smtp.url } });
    try {
      const { license } = await seedLicense(server, { license: { customer: { email: 'patient@example.com' }, send_email: true } });
      // The first attempt fails: nothing listens.
      await waitFor(async () => (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0]?.attempts >= 1);
      const failed = (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0];
      expect(failed).toMatchObject({ status: 'queued', transport: null });
      expect(failed.last_error).toMatch(/ECONNREFUSED|connect/i);

      await smtp.start();
      await smtp.waitFor(1);
      await waitFor(async () => (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0].status === 'sent');
      const sent = (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0];
      expect(sent.attempts).toBeGreaterThanOrEqual(2);
      expect(sent.last_error).toBeNull();
      expect(smtp.messages[0]!.text).toContain(license.key);
      expect(smtp.messages[0]!.messageId).toBe(sent.message_id);
      // Delivered once.
      await new Promise((r) => setTimeout(r, 300));
      expect(smtp.messages).toHaveLength(1);
    } finally {
      await server.close();
      await smtp.stop();
    }
  });

  it('an email committed by a process that stopped before sending it is sent once after restart', async () => {
    const smtp = await smtpCatcher();
    const first = await startServer({ env: { KEYMINT_SMTP_URL: smtp.url }, worker: { start: false } });
    let second: TestServer | undefined;
    try {
      const { license } = await seedLicense(first, { license: { customer: { email: 'restart@example.com' }, send_email: true } });
      await new Promise((r) => setTimeout(r, 200));
      expect(smtp.messages).toHaveLength(0);
      second = await startServer({ replicaOf: first, env: { KEYMINT_SMTP_URL: smtp.url } });
      await smtp.waitFor(1);
      await waitFor(async () => (await second!.request('GET', `/v1/emails?license=${license.id}`)).body.data[0].status === 'sent');
      await new Promise((r) => setTimeout(r, 300));
      expect(smtp.messages).toHaveLength(1);
      expect(smtp.messages[0]!.text).toContain(license.key);
    } finally {
      await second?.close();
      await first.close();
      await smtp.stop();
    }
  });

  it('a send repeated after a crash carries the same Message-ID, so the duplicate is recognizable', async () => {
    const smtp = await smtpCatcher();
    const server = await startServer({ env: { KEYMINT_SMTP_URL: smtp.url } });
    try {
      const { license } = await seedLicense(server, { license: { customer: { email: 'twice@example.com' }, send_email: true } });
      await smtp.waitFor(1);
      const [email] = (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data;
      await waitFor(async () => (await server.request('GET', `/v1/emails/${email.id}`)).body.status === 'sent');
      // What a crash between the server's "250 OK" and the commit of the outcome leaves behind: a job to run, an email not marked sent.
      await server.db.kysely.updateTable('emails').set({ status: 'queued', sent_at: null }).where('id', '=', email.id).execute();
      await server.db.kysely.updateTable('jobs').set({ state: 'pending', run_at_ms: Date.now() }).where('payload', 'like', `%${email.id}%`).execute();
      server.app.worker.wake();
      await smtp.waitFor(2);
      expect(smtp.messages[1]!.messageId).toBe(smtp.messages[0]!.messageId);
      expect(smtp.messages[1]!.messageId).toBe(email.message_id);
    } finally {
      await server.close();
      await smtp.stop();
    }
  });
});

describe('the local mailbox (no SMTP configured)', () => {
  let server: TestServer;
  const BIN = path.resolve('bin/keymint.js');
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, KEYMINT_DATA_DIR: server.config.dataDir, KEYMINT_LOG_LEVEL: 'warn' }, encoding: 'utf8' });

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps every email as a file that `keymint mail list|show` prints', async () => {
    expect(cli(['mail', 'list']).stdout).toContain('The mailbox is empty');
    const { license } = await seedLicense(server, {
      product: { name: 'Offline Tool' },
      license: { customer: { email: 'newcomer@example.com', name: 'Nia' }, send_email: true },
    });
    await waitFor(async () => (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0]?.status === 'sent');
    const [email] = (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data;
    expect(email.transport).toBe('mailbox');
    const file = path.join(server.config.dataDir, 'mailbox', `${email.id}.eml`);
    expect(fs.existsSync(file)).toBe(true);

    const list = cli(['mail', 'list']);
    expect(list.status).toBe(0);
    expect(list.stdout).toContain(email.id);
    expect(list.stdout).toContain('newcomer@example.com');
    expect(list.stdout).toContain('Your license key for Offline Tool');

    const show = cli(['mail', 'show', email.id]);
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('To:         newcomer@example.com');
    expect(show.stdout).toContain('Subject:    Your license key for Offline Tool');
    expect(show.stdout).toContain(`Message-ID: ${email.message_id}`);
    expect(show.stdout).toContain('Hi Nia,');
    expect(show.stdout).toContain(license.key);
    const html = cli(['mail', 'show', email.id, '--html']);
    expect(html.stdout).toContain('<!doctype html>');
    expect(html.stdout).toContain(license.key);
    expect(cli(['mail', 'show', email.id, '--raw']).stdout).toContain(`Message-ID: ${email.message_id}`);

    const missing = cli(['mail', 'show', 'eml_00000000000000000000000000']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no email');
    expect(cli(['mail', 'show', '../master.key']).status).toBe(1);
  });

  it('a retried send rewrites the same file: the mailbox never holds a message twice', async () => {
    const { license } = await seedLicense(server, { license: { customer: { email: 'again@example.com' }, send_email: true } });
    await waitFor(async () => (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data[0]?.status === 'sent');
    const [email] = (await server.request('GET', `/v1/emails?license=${license.id}`)).body.data;
    const before = fs.readdirSync(path.join(server.config.dataDir, 'mailbox')).length;
    await server.db.kysely.updateTable('emails').set({ status: 'queued' }).where('id', '=', email.id).execute();
    await server.db.kysely.updateTable('jobs').set({ state: 'pending', run_at_ms: Date.now() }).where('payload', 'like', `%${email.id}%`).execute();
    server.app.worker.wake();
    await waitFor(async () => (await server.request('GET', `/v1/emails/${email.id}`)).body.status === 'sent');
    const files = fs.readdirSync(path.join(server.config.dataDir, 'mailbox'));
    expect(files).toHaveLength(before);
    expect(files.every((f) => f.endsWith('.eml'))).toBe(true);
  });
});

describe('mail configuration and templates', () => {
  it('accepts a From address with or without a name, and nothing else', () => {
    expect(loadConfig({}).mailFrom).toBe('Keymint <no-reply@localhost>');
    expect(loadConfig({ KEYMINT_MAIL_FROM: 'licenses@acme.test' }).mailFrom).toBe('licenses@acme.test');
    expect(loadConfig({ KEYMINT_MAIL_FROM: ' "Acme, Inc." <licenses@acme.test> ' }).mailFrom).toBe('"Acme, Inc." <licenses@acme.test>');
    for (const bad of ['acme', 'Acme <licenses>', 'a@b.c\nBcc: victim@example.com', 'Acme <a@b.c> extra']) {
      expect(() => loadConfig({ KEYMINT_MAIL_FROM: bad }), bad).toThrow(ConfigError);
    }
  });

  it('escapes every interpolation exactly once, and keeps nested templates as markup', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p title="${'"x"'}">${inner}${['a&', html`<br>`]}${null}${undefined}${false}${0}</p>`.value).toBe('<p title="&quot;x&quot;"><b>&lt;i&gt;</b>a&amp;<br>0</p>');
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
    expect(paragraphs('one\ntwo\n\n<three>').value).toMatch(/^<p style="[^"]*">one<br>two<\/p>\n<p style="[^"]*">&lt;three&gt;<\/p>$/);
  });
});
