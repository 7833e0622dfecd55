import { AccountService } from './accounts/accounts.js';
import { StripeConnectionService } from './billing/connection.js';
import { Fulfilment, WRITE_BACK_JOB } from './billing/fulfilment.js';
import { PROCESS_EVENT_JOB, StripeInbox } from './billing/inbox.js';
import { PriceMappingService } from './billing/price-mappings.js';
import { writeBackHandler } from './billing/write-back.js';
import type { Config } from './config.js';
import type { SecretBox } from './crypto/secret-box.js';
import { CustomerService } from './customers/customers.js';
import type { Db } from './db/database.js';
import { WEBHOOK_JOB, WebhookService } from './delivery/webhooks.js';
import { EMAIL_JOB, EmailService } from './delivery/emails.js';
import { EventLog } from './events/event-log.js';
import { EventRetention } from './events/retention.js';
import { JobService } from './jobs/jobs.js';
import type { JobHandler } from './jobs/worker.js';
import { CatalogService } from './licensing/catalog.js';
import { LicenseApiService } from './licensing/license-api.js';
import { ValidationCache } from './licensing/validation-cache.js';
import { LicenseFileService } from './licensing/license-files.js';
import { LicenseService } from './licensing/licenses.js';
import { SigningKeyService } from './licensing/signing-keys.js';

export interface Services {
  now: () => number;
  accounts: AccountService;
  signingKeys: SigningKeyService;
  events: EventLog;
  catalog: CatalogService;
  customers: CustomerService;
  licenses: LicenseService;
  licenseApi: LicenseApiService;
  jobs: JobService;
  licenseFiles: LicenseFileService;
  stripeConnections: StripeConnectionService;
  priceMappings: PriceMappingService;
  stripeInbox: StripeInbox;
  emails: EmailService;
  webhooks: WebhookService;
  eventRetention: EventRetention;
  /** What the job worker runs, by job type. */
  jobHandlers: Record<string, JobHandler>;
  close(): Promise<void>;
}

/** Every service, built once, in dependency order; routes get this set and nothing else. */
export function createServices(db: Db, box: SecretBox, now: () => number, config: Config): Services {
  const signingKeys = new SigningKeyService(db.kysely, box, now);
  const jobs = new JobService(db.kysely, now);
  const accounts = new AccountService(db.kysely, db.dialect, signingKeys, now);
  // The event log needs the license service to re-derive keys when events are read, and the webhook
  // service to fan events out to endpoints; both are set right below.
  let licenses: LicenseService | undefined;
  let webhooks: WebhookService | undefined;
  const events = new EventLog(
    db.kysely,
    now,
    (scope, object) => (licenses ? licenses.reveal(scope, object) : Promise.resolve(object)),
    (trx, scope, event) => (webhooks ? webhooks.fanOut(trx, scope, event) : Promise.resolve()),
  );
  webhooks = new WebhookService(db.kysely, box, jobs, events, now, { timeoutMs: config.webhookTimeoutMs });
  const eventRetention = new EventRetention(db.kysely, now, config.eventRetentionDays);
  const catalog = new CatalogService(db.kysely, events, now);
  const customers = new CustomerService(db.kysely, events, now);
  licenses = new LicenseService(db.kysely, db.dialect, catalog, customers, signingKeys, events, now);
  // Only where every write that changes an answer is reported (SQLite); see docs/design.md, "Hot path".
  const validationCache = db.changes && config.validationCacheSize > 0 ? new ValidationCache(db.changes, config.validationCacheSize) : null;
  const licenseApi = new LicenseApiService(db.kysely, db.dialect, events, now, validationCache, db.prepared);
  const emails = new EmailService(db.kysely, box, jobs, licenses, config, now);
  const stripeConnections = new StripeConnectionService(db.kysely, box, config.publicUrl, config.stripeApiUrl, now);
  const priceMappings = new PriceMappingService(db.kysely, catalog, now);
  const fulfilment = new Fulfilment(licenses, customers, priceMappings, jobs, now);
  fulfilment.notifier = emails;
  const stripeInbox = new StripeInbox(db.kysely, stripeConnections, jobs, events, fulfilment, now);
  const licenseFiles = new LicenseFileService(db.kysely, signingKeys, licenseApi, now);
  return {
    now,
    licenseFiles,
    stripeConnections,
    priceMappings,
    stripeInbox,
    accounts,
    signingKeys,
    events,
    catalog,
    customers,
    licenses,
    licenseApi,
    jobs,
    emails,
    webhooks,
    eventRetention,
    jobHandlers: {
      [EMAIL_JOB]: emails.send,
      [WEBHOOK_JOB]: webhooks.deliver,
      [PROCESS_EVENT_JOB]: (payload, context) => stripeInbox.process(payload, context),
      [WRITE_BACK_JOB]: writeBackHandler(stripeConnections),
    },
    close: async () => {
      emails.close();
      await licenseApi.close();
    },
  };
}
