/**
 * Where `KeymintClient` keeps what it needs offline: the last good license
 * file per license key (and fingerprint), and the latest server time it has
 * seen. Values are short strings; names match /^[a-z0-9.-]+$/, so they are
 * safe as file names. Anything with these three methods works (sync or
 * async): a file (`FileStorage` from `@keymint/verify/node`), localStorage
 * (`webStorage`), the OS keychain, the app's own settings store.
 *
 * Storage needs no secrecy for integrity — every file is verified on read, so
 * an edited one is refused — but it holds license files, which are as
 * confidential as the license's details (encrypted files reveal nothing
 * without the key).
 */
export interface LicenseStorage {
  get(name: string): string | null | undefined | Promise<string | null | undefined>;
  set(name: string, value: string): void | Promise<void>;
  delete(name: string): void | Promise<void>;
}

/** The default: lives as long as the process, so it covers a server outage but not a restart while offline. */
export class MemoryStorage implements LicenseStorage {
  private readonly values = new Map<string, string>();

  get(name: string): string | null {
    return this.values.get(name) ?? null;
  }

  set(name: string, value: string): void {
    this.values.set(name, value);
  }

  delete(name: string): void {
    this.values.delete(name);
  }
}

/** Adapts a Web Storage object (`localStorage` in a browser or Electron renderer). */
export function webStorage(storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>, prefix = 'keymint:'): LicenseStorage {
  return {
    get: (name) => storage.getItem(prefix + name),
    set: (name, value) => storage.setItem(prefix + name, value),
    delete: (name) => storage.removeItem(prefix + name),
  };
}
