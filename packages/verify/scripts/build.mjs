// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its own
// declarations, so that both `import` and `require` get matching types.
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit', cwd: root });
}
writeFileSync(join(root, 'dist/cjs/package.json'), '{ "type": "commonjs" }\n');
chmodSync(join(root, 'dist/esm/bin.js'), 0o755);
console.log('built dist/esm and dist/cjs');
