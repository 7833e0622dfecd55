import { AccountService } from './accounts/accounts.js';
import type { SecretBox } from './crypto/secret-box.js';
import { CustomerService } from './customers/customers.js';
import type { Db } from './db/database.js';
import { EventLog } from './events/event-log.js';
import { JobService } from './jobs/jobs.js';
import type { JobHandler } from './jobs/worker.js';
import { CatalogService } from './licensing/catalog.js';
import { LicenseApiService } from './licensing/license-api.js';
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
  /** What the job worker runs, by job type. */
  jobHandlers: Record<string, JobHandler>;
  close(): Promise<void>;
}

/** Every service, built once, in dependency order; routes get this set and nothing else. */
export function createServices(db: Db, box: SecretBox, now: () => number): Services {
  const signingKeys = new SigningKeyService(db.kysely, box, now);
  const jobs = new JobService(db.kysely, now);
  const accounts = new AccountService(db.kysely, db.dialect, signingKeys, now);
  // The event log needs the license service to re-derive keys when events are read; it is set right below.
  let licenses: LicenseService | undefined;
  const events = new EventLog(db.kysely, now, (scope, object) => (licenses ? licenses.reveal(scope, object) : Promise.resolve(object)));
  const catalog = new CatalogService(db.kysely, events, now);
  const customers = new CustomerService(db.kysely, events, now);
  licenses = new LicenseService(db.kysely, db.dialect, catalog, customers, signingKeys, events, now);
  const licenseApi = new LicenseApiService(db.kysely, db.dialect, events, now);
  return {
    now,
    accounts,
    signingKeys,
    events,
    catalog,
    customers,
    licenses,
    licenseApi,
    jobs,
    jobHandlers: {},
    close: () => licenseApi.close(),
  };
}
