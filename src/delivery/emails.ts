import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { findProduct } from '../db/repositories/catalog.js';
import { findCustomer } from '../db/repositories/customers.js';
import { findEmail, findEmailById, insertEmail, listEmails, updateEmail, type EmailFilter, type EmailRow } from '../db/repositories/emails.js';
import { findLicenseContext, type LicenseContextRow } from '../db/repositories/licenses.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import type { Database, EmailKind, Scope } from '../db/schema.js';
import { DomainError, conflict, invalidRequest, notFound } from '../errors.js';
import { newId } from '../ids.js';
import type { JobService } from '../jobs/jobs.js';
import { PermanentJobError, type JobContext } from '../jobs/worker.js';
import type { LicenseService } from '../licensing/licenses.js';
import { parseEmailSettings } from './email-settings.js';
import { createMailer, isPermanentSmtpError, type Mailer } from './mailer.js';
import * as templates from './templates.js';

/** The job type that sends one email. */
export const EMAIL_JOB = 'email.send';

export type MailConfig = Pick<Config, 'publicUrl' | 'mailFrom' | 'smtpUrl' | 'dataDir'>;

export function emailView(row: EmailRow) {
  return {
    id: row.id,
    object: 'email' as const,
    kind: row.kind,
    to: row.recipient,
    subject: row.subject,
    product: row.product_id,
    licenses: JSON.parse(row.license_ids) as string[],
    status: row.status,
    message_id: row.message_id,
    transport: row.transport,
    attempts: row.attempts,
    last_error: row.last_error,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
    sent_at: row.sent_at,
  };
}
export type EmailView = ReturnType<typeof emailView>;

export interface EnqueueEmailOptions {
  /**
   * One email per dedupe key, ever, within the environment: enqueuing the
   * same fact twice (a redelivered Stripe event, a second replica) is a no-op
   * that returns null. Key it on the cause, e.g. `checkout:<session id>`.
   */
  dedupeKey?: string;
}

interface EmailData {
  /** Magic links: the URL holds a sign-in token, so it is kept sealed. */
  url_sealed?: string;
  /** Magic links: when the link stops working. Reminders: the expiry they are about. */
  expires_at?: number | null;
}

/** Why an email is no longer worth sending, or null to send it. */
type Moot = string | null;

const SAMPLE_KEY = 'KM1.eyJ2IjoxLCJsaWQiOiJsaWNfc2FtcGxlIiwicGlkIjoicGR0X3NhbXBsZSJ9.c2FtcGxlLXNpZ25hdHVyZS1ub3QtYS1yZWFsLWtleQ';

/**
 * Customer email. Every email is a promise made inside the transaction of
 * its cause: a row in `emails` (the delivery log) and an `email.send` job in
 * the outbox commit with the change, or neither does. The job renders the
 * message when it runs — license keys are re-derived then, never stored —
 * and hands it to SMTP or the local mailbox. Delivery is at least once: a
 * crash after the server accepted a message but before the job was marked
 * done sends it again, with the same Message-ID.
 */
export class EmailService {
  private transport: Mailer | null = null;
  private readonly messageIdDomain: string;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly jobs: JobService,
    private readonly licenses: LicenseService,
    private readonly config: MailConfig,
    private readonly now: () => number,
  ) {
    this.messageIdDomain = new URL(config.publicUrl).hostname || 'localhost';
  }

  get transportKind(): 'smtp' | 'mailbox' {
    return this.config.smtpUrl ? 'smtp' : 'mailbox';
  }

  // ── what other services call, inside their transactions ─────────────────

  /**
   * The license delivery email: one message listing every license of one
   * purchase, to their customer, with the first license's product settings.
   * Returns null when nothing was enqueued: the dedupe key was already used,
   * or the licenses have no customer email (use `requireLicenseDelivery` to
   * make that an error).
   */
  async enqueueLicenseDelivery(trx: Kysely<Database>, scope: Scope, licenseIds: string[], options: EnqueueEmailOptions = {}): Promise<EmailView | null> {
    if (licenseIds.length === 0) throw new Error('enqueueLicenseDelivery needs at least one license');
    const rows = await Promise.all(licenseIds.map((id) => this.licenseRow(trx, scope, id)));
    const first = rows[0]!;
    if (rows.some((r) => r.customer_id !== first.customer_id)) throw new Error('licenses of one delivery email must belong to one customer');
    const to = await this.recipientOf(trx, scope, first);
    if (to === null) return null;
    return this.enqueue(trx, scope, { kind: 'license_delivery', to, productId: first.product_id, licenseIds, data: {} }, options);
  }

  /** As `enqueueLicenseDelivery`, but a license without a customer email is a 400 (the admin API's `send_email`). */
  async requireLicenseDelivery(trx: Kysely<Database>, scope: Scope, licenseId: string): Promise<EmailView> {
    const row = await this.licenseRow(trx, scope, licenseId);
    if (row.revoked_at !== null && row.revoked_at <= this.now()) throw conflict('license_revoked', 'a revoked license cannot be sent');
    const to = await this.recipientOf(trx, scope, row);
    if (to === null) throw invalidRequest('customer_email_missing', 'the license has no customer with an email address to send it to', 'customer');
    const email = await this.enqueue(trx, scope, { kind: 'license_delivery', to, productId: row.product_id, licenseIds: [licenseId], data: {} }, {});
    if (!email) throw new Error('an email without a dedupe key was not enqueued');
    return email;
  }

  /** The payment-failed notice; null when the product does not send it (the default), there is no email, or the dedupe key was used. */
  async enqueuePaymentFailed(trx: Kysely<Database>, scope: Scope, licenseId: string, options: EnqueueEmailOptions = {}): Promise<EmailView | null> {
    const row = await this.licenseRow(trx, scope, licenseId);
    const product = await findProduct(trx, scope, row.product_id);
    if (!product || !parseEmailSettings(product.email_settings).send_payment_failed) return null;
    const to = await this.recipientOf(trx, scope, row);
    if (to === null) return null;
    return this.enqueue(trx, scope, { kind: 'payment_failed', to, productId: row.product_id, licenseIds: [licenseId], data: {} }, options);
  }

  /** The expiring-soon reminder (the scheduler sends it); null when there is no email or the dedupe key was used. */
  async enqueueExpiringSoon(trx: Kysely<Database>, scope: Scope, licenseId: string, options: EnqueueEmailOptions = {}): Promise<EmailView | null> {
    const row = await this.licenseRow(trx, scope, licenseId);
    const to = await this.recipientOf(trx, scope, row);
    if (to === null) return null;
    return this.enqueue(trx, scope, { kind: 'expiring_soon', to, productId: row.product_id, licenseIds: [licenseId], data: { expires_at: row.expires_at } }, options);
  }

  /** A portal sign-in link. `url` carries a token: it is stored sealed and only ever leaves in the email. */
  async enqueueMagicLink(
    trx: Kysely<Database>,
    scope: Scope,
    email: string,
    url: string,
    options: EnqueueEmailOptions & { expiresAt?: number | null } = {},
  ): Promise<EmailView | null> {
    if (!/^https?:\/\//i.test(url)) throw new Error('a magic link must be an http(s) URL');
    const id = newId('email');
    const data: EmailData = { url_sealed: this.box.seal(url, `email:${id}`), expires_at: options.expiresAt ?? null };
    return this.enqueue(trx, scope, { id, kind: 'magic_link', to: email.trim().toLowerCase(), productId: null, licenseIds: [], data }, options);
  }

  // ── the admin API ───────────────────────────────────────────────────────

  /** Sends a license's delivery email again (the key is re-derived, as every time). */
  async resendLicense(scope: Scope, licenseId: string): Promise<EmailView> {
    return this.db.transaction().execute((trx) => this.requireLicenseDelivery(trx, scope, licenseId));
  }

  async list(scope: Scope, filter: EmailFilter, page: PageParams) {
    const resolved = { ...filter, ...(filter.to !== undefined && { to: filter.to.trim().toLowerCase() }) };
    const result = await listEmails(this.db, scope, resolved, page);
    return mapPage(result, emailView);
  }

  async get(scope: Scope, id: string): Promise<EmailView> {
    const row = await findEmail(this.db, scope, id);
    if (!row) throw notFound('email', id, 'id');
    return emailView(row);
  }

  /** A product's template rendered with sample data, exactly as it would be sent. */
  async preview(scope: Scope, productIdOrCode: string, template: EmailKind) {
    const product = await findProduct(this.db, scope, productIdOrCode);
    if (!product) throw notFound('product', productIdOrCode, 'id');
    const settings = parseEmailSettings(product.email_settings);
    const now = this.now();
    const customerName = 'Jane Doe';
    let rendered: templates.RenderedEmail;
    switch (template) {
      case 'license_delivery':
        rendered = templates.licenseDelivery({
          productName: product.name,
          settings,
          customerName,
          licenses: [{ key: SAMPLE_KEY, productName: product.name, expiresAt: now + 365 * 86_400 }],
          portalUrl: this.portalUrl(),
        });
        break;
      case 'expiring_soon':
        rendered = templates.expiringSoon({
          productName: product.name,
          customerName,
          key: SAMPLE_KEY,
          expiresAt: now + Math.max(1, settings.expiring_soon_days) * 86_400,
          renewUrl: this.portalUrl(),
        });
        break;
      case 'payment_failed':
        rendered = templates.paymentFailed({ productName: product.name, customerName, portalUrl: this.portalUrl() });
        break;
      case 'magic_link':
        rendered = templates.magicLink({ url: `${this.portalUrl()}/login?token=sample`, expiresAt: now + 900 });
        break;
    }
    return { object: 'email_preview' as const, template, from: this.config.mailFrom, to: `${customerName} <jane@example.com>`, ...rendered };
  }

  // ── the job ─────────────────────────────────────────────────────────────

  /** The `email.send` job handler: render, send, log. Safe to run twice (same Message-ID). */
  readonly send = async (payload: unknown, context: JobContext): Promise<void> => {
    const id = (payload as { email?: unknown } | null)?.email;
    if (typeof id !== 'string') throw new PermanentJobError('the job names no email');
    const row = await findEmailById(this.db, id);
    if (!row) throw new PermanentJobError(`email ${id} does not exist`);
    // Already delivered, or overtaken (the job was re-run by hand): re-sending is `POST /v1/licenses/:id/send_email`.
    if (row.status === 'sent' || row.status === 'cancelled') return;
    const attempts = row.attempts + 1;
    const fail = async (err: unknown, permanent: boolean): Promise<never> => {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, 1000);
      const final = permanent || context.attempt >= context.job.max_attempts;
      await updateEmail(this.db, id, { attempts, last_error: message, status: final ? 'failed' : 'queued', updated: this.now() });
      throw permanent ? new PermanentJobError(message) : err;
    };

    let rendered: templates.RenderedEmail | Moot;
    try {
      rendered = await this.render(row);
    } catch (err) {
      // What the email is about is gone or unreadable: no retry brings it back. Anything else (the database) is retried.
      return fail(err, err instanceof PermanentJobError || err instanceof DomainError);
    }
    if (typeof rendered === 'string' || rendered === null) {
      await updateEmail(this.db, id, { status: 'cancelled', last_error: rendered, updated: this.now() });
      return;
    }
    try {
      await this.mailer().send({
        id: row.id,
        from: this.config.mailFrom,
        to: row.recipient,
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        messageId: row.message_id,
      });
    } catch (err) {
      return fail(err, isPermanentSmtpError(err));
    }
    const now = this.now();
    await updateEmail(this.db, id, { status: 'sent', subject: rendered.subject, transport: this.transportKind, attempts, last_error: null, sent_at: now, updated: now });
  };

  close(): void {
    this.transport?.close();
    this.transport = null;
  }

  // ── internals ───────────────────────────────────────────────────────────

  private mailer(): Mailer {
    this.transport ??= createMailer({ smtpUrl: this.config.smtpUrl, dataDir: this.config.dataDir });
    return this.transport;
  }

  private portalUrl(): string {
    return `${this.config.publicUrl}/portal`;
  }

  private async enqueue(
    trx: Kysely<Database>,
    scope: Scope,
    spec: { id?: string; kind: EmailKind; to: string; productId: string | null; licenseIds: string[]; data: EmailData },
    options: EnqueueEmailOptions,
  ): Promise<EmailView | null> {
    const id = spec.id ?? newId('email');
    const dedupeKey = options.dedupeKey === undefined ? undefined : `email:${scope.accountId}:${scope.env}:${spec.kind}:${options.dedupeKey}`;
    // The job first: when its dedupe key is taken, the email was promised before and nothing is added.
    if (!(await this.jobs.enqueue(trx, scope, EMAIL_JOB, { email: id }, { dedupeKey }))) return null;
    const now = this.now();
    const row: EmailRow = {
      id,
      account_id: scope.accountId,
      env: scope.env,
      kind: spec.kind,
      recipient: spec.to,
      // Rendered now for the log (and to fail early on a bad template); rendered again when sent.
      subject: '',
      product_id: spec.productId,
      license_ids: JSON.stringify(spec.licenseIds),
      data: JSON.stringify(spec.data),
      message_id: `<${id}@${this.messageIdDomain}>`,
      status: 'queued',
      transport: null,
      attempts: 0,
      last_error: null,
      created: now,
      updated: now,
      sent_at: null,
    };
    const rendered = await this.render(row, trx);
    row.subject = typeof rendered === 'object' && rendered !== null ? rendered.subject : '';
    await insertEmail(trx, row);
    return emailView(row);
  }

  private async licenseRow(db: Kysely<Database>, scope: Scope, id: string): Promise<LicenseContextRow> {
    const row = await findLicenseContext(db, scope, id, this.now());
    if (!row) throw notFound('license', id, 'id');
    return row;
  }

  private async recipientOf(db: Kysely<Database>, scope: Scope, license: LicenseContextRow): Promise<string | null> {
    if (license.customer_id === null) return null;
    return (await findCustomer(db, scope, license.customer_id))?.email ?? null;
  }

  /**
   * The message for a logged email, from the current state of what it is
   * about; a string (why) when events overtook it: a reminder for an expiry
   * that a renewal has since moved.
   */
  private async render(row: EmailRow, db: Kysely<Database> = this.db): Promise<templates.RenderedEmail | Moot> {
    const scope: Scope = { accountId: row.account_id, env: row.env };
    const data = JSON.parse(row.data) as EmailData;
    if (row.kind === 'magic_link') {
      let url: string;
      try {
        url = this.box.open(data.url_sealed ?? '', `email:${row.id}`).toString('utf8');
      } catch {
        throw new PermanentJobError('the magic link cannot be unsealed (was the master key changed?)');
      }
      return templates.magicLink({ url, expiresAt: data.expires_at ?? null });
    }
    const ids = JSON.parse(row.license_ids) as string[];
    const licenses = await Promise.all(ids.map((id) => this.licenseRow(db, scope, id)));
    const first = licenses[0];
    if (!first) throw new PermanentJobError('the email is about no license');
    const productOf = new Map<string, NonNullable<Awaited<ReturnType<typeof findProduct>>>>();
    for (const l of licenses) {
      if (productOf.has(l.product_id)) continue;
      const product = await findProduct(db, scope, l.product_id);
      if (!product) throw notFound('product', l.product_id);
      productOf.set(l.product_id, product);
    }
    const product = productOf.get(first.product_id)!;
    const customer = first.customer_id === null ? undefined : await findCustomer(db, scope, first.customer_id);
    const customerName = customer?.name ?? null;
    switch (row.kind) {
      case 'license_delivery':
        return templates.licenseDelivery({
          productName: product.name,
          settings: parseEmailSettings(product.email_settings),
          customerName,
          licenses: await Promise.all(
            licenses.map(async (l) => ({ key: await this.licenses.keyOf(l), productName: productOf.get(l.product_id)!.name, expiresAt: l.expires_at })),
          ),
          portalUrl: this.portalUrl(),
        });
      case 'expiring_soon': {
        const now = this.now();
        if (first.revoked_at !== null && first.revoked_at <= now) return 'the license was revoked';
        if (first.expires_at === null || (data.expires_at !== undefined && first.expires_at !== data.expires_at)) return 'the license was renewed or its expiry changed';
        if (first.expires_at <= now) return 'the license expired before the reminder could be sent';
        return templates.expiringSoon({ productName: product.name, customerName, key: await this.licenses.keyOf(first), expiresAt: first.expires_at, renewUrl: this.portalUrl() });
      }
      case 'payment_failed':
        return templates.paymentFailed({ productName: product.name, customerName, portalUrl: this.portalUrl() });
    }
  }
}
