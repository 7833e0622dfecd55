import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = fileURLToPath(new URL('../../', import.meta.url));

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/**
 * Builds dist/ unless it is newer than src/. `npm test` builds first anyway;
 * this covers a run from the repository root (`npx vitest run packages/verify`).
 * Test files run in parallel processes, so a lock directory makes one build
 * while the others wait.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = join(packageDir, '.build-lock');
  const marker = join(packageDir, 'dist/cjs/package.json');
  const fresh = () => existsSync(marker) && statSync(marker).mtimeMs >= newest(join(packageDir, 'src'));
  for (let waited = 0; ; waited += 100) {
    if (fresh()) return;
    try {
      mkdirSync(lock);
    } catch {
      // A lock left by a run that was killed mid-build: a build takes seconds, not minutes.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      if (waited > 240_000) throw new Error(`waited four minutes for ${lock}; remove it if no build is running`);
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    try {
      if (!fresh()) execFileSync(process.execPath, [join(packageDir, 'scripts/build.mjs')], { cwd: packageDir, stdio: 'pipe' });
    } finally {
      rmdirSync(lock);
    }
  }
}
