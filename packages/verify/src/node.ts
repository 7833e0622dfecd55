/// <reference types="node" />
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LicenseStorage } from './storage.js';

/**
 * Node-only helpers, kept out of the main entry so that browser bundles never
 * see `node:fs`. Import from `@keymint/verify/node`.
 */

const NAME = /^[a-z0-9.-]+$/;

/**
 * Keeps each value in its own file under `directory` (created 0700, files
 * 0600), written to a temporary file and renamed into place, so a crash or a
 * concurrent reader never sees half a license file.
 */
export class FileStorage implements LicenseStorage {
  constructor(readonly directory: string) {}

  async get(name: string): Promise<string | null> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async set(name: string, value: string): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const target = this.path(name);
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, value, { mode: 0o600 });
    await rename(temporary, target);
  }

  async delete(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  private path(name: string): string {
    if (!NAME.test(name) || name.startsWith('.')) throw new TypeError(`invalid storage name ${name}`);
    return join(this.directory, name);
  }
}
