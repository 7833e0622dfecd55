/// <reference types="node" />
import { readFile } from 'node:fs/promises';
import { verifyLicenseFile } from './license-file.js';
import { verifyKey } from './license-key.js';
import { KeySet, publicKeyEntries, type PublicKeyInput } from './public-keys.js';

/**
 * `keymint-verify <key|file> --public-key <base64url|pem|@file>`: checks a
 * license key or license file offline and says why not. Exits 0 when valid, 1
 * when not, 2 on a usage or input error. `runCli` is the whole program, for
 * embedding (the main `keymint verify` command calls it).
 */

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
  env: Record<string, string | undefined>;
}

export const USAGE = `usage: keymint-verify <key | license-file path | -> --public-key <key> [options]

Checks a Keymint license key, or a license file, offline.

  <key>                    a license key (KM1.…), or a file holding one
  <license-file path>      a license file (-----BEGIN KEYMINT LICENSE FILE-----); - reads standard input

options
  --public-key <key>       a trusted signing key: base64url (raw 32 bytes), a PEM, kid=<base64url>,
                           or @path to a file with a PEM, a base64url key, or the JSON of
                           GET /v1/signing_keys; repeat for several (default: $KEYMINT_PUBLIC_KEYS)
  --key <license key>      for a license file: the license key it belongs to (decrypts it)
  --fingerprint <fp>       for a license file bound to a device: this device's fingerprint
  --product <pdt_…>        for a key: also require this product
  --env <test|live>        for a key: also require this environment
  --now <unix seconds>     check a license file at this time instead of now
  --json                   print the result as JSON
  -h, --help               this text

exit status: 0 valid, 1 not valid, 2 usage or input error`;

class UsageError extends Error {}

interface Args {
  input: string | null;
  publicKeys: string[];
  key?: string;
  fingerprint?: string;
  product?: string;
  env?: 'test' | 'live';
  now?: number;
  json: boolean;
  help: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { input: null, publicKeys: [], json: false, help: false };
  const takesValue = new Set(['--public-key', '--key', '--fingerprint', '--product', '--env', '--now']);
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0 && takesValue.has(arg.slice(0, eq))) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (takesValue.has(arg)) {
      value ??= argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
    }
    switch (arg) {
      case '--public-key':
        args.publicKeys.push(value!);
        break;
      case '--key':
        args.key = value!;
        break;
      case '--fingerprint':
        args.fingerprint = value!;
        break;
      case '--product':
        args.product = value!;
        break;
      case '--env':
        if (value !== 'test' && value !== 'live') throw new UsageError('--env must be test or live');
        args.env = value;
        break;
      case '--now':
        if (!/^[0-9]+$/.test(value!)) throw new UsageError('--now must be unix seconds');
        args.now = Number(value);
        break;
      case '--json':
        args.json = true;
        break;
      case '-h':
      case '--help':
        args.help = true;
        break;
      default:
        if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
        if (args.input !== null) throw new UsageError('give one key or license file');
        args.input = arg;
    }
  }
  return args;
}

async function loadPublicKeys(values: string[], io: CliIo): Promise<KeySet> {
  const entries: Array<{ kid: string | null; key: string }> = [];
  try {
    for (const value of values) {
      const text = (value.startsWith('@') ? await io.readFile(value.slice(1)) : value).trim();
      if (text.startsWith('{') || text.startsWith('[')) {
        entries.push(...publicKeyEntries(JSON.parse(text) as Exclude<PublicKeyInput, KeySet>));
      } else if (/^[A-Za-z0-9_-]+=[A-Za-z0-9_-]{43}$/.test(text)) {
        // kid=<base64url>: base64url has no '=', so the first one separates.
        const eq = text.indexOf('=');
        entries.push({ kid: text.slice(0, eq), key: text.slice(eq + 1) });
      } else {
        entries.push({ kid: null, key: text });
      }
    }
    return new KeySet(entries);
  } catch (error) {
    throw new UsageError(`bad --public-key: ${(error as Error).message}`);
  }
}

type Input = { kind: 'key'; key: string } | { kind: 'file'; text: string };

async function loadInput(input: string, io: CliIo): Promise<Input> {
  const classify = (text: string, from: string): Input => {
    const trimmed = text.trim();
    if (trimmed.startsWith('KM1.')) return { kind: 'key', key: trimmed };
    if (trimmed.includes('-----BEGIN KEYMINT LICENSE FILE-----')) return { kind: 'file', text };
    throw new UsageError(`${from} is neither a license key (KM1.…) nor a license file`);
  };
  if (input === '-') return classify(await io.readStdin(), 'standard input');
  if (input.trim().startsWith('KM1.') || input.includes('-----BEGIN')) return classify(input, 'the argument');
  let text: string;
  try {
    text = await io.readFile(input);
  } catch (error) {
    throw new UsageError(`cannot read ${input}: ${(error as Error).message}`);
  }
  return classify(text, input);
}

const iso = (unix: number) => new Date(unix * 1000).toISOString().replace('.000Z', 'Z');

function relative(seconds: number): string {
  const abs = Math.abs(seconds);
  const span = abs >= 86_400 ? `${Math.floor(abs / 86_400)} d` : abs >= 3_600 ? `${Math.floor(abs / 3_600)} h` : `${abs} s`;
  return seconds >= 0 ? `in ${span}` : `${span} ago`;
}

export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  try {
    const args = parseArgs(argv);
    if (args.help) {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    if (args.input === null) throw new UsageError('give a license key or a license file');
    const keyValues = args.publicKeys.length > 0 ? args.publicKeys : io.env.KEYMINT_PUBLIC_KEYS ? [io.env.KEYMINT_PUBLIC_KEYS] : [];
    if (keyValues.length === 0) throw new UsageError('give at least one --public-key (or set KEYMINT_PUBLIC_KEYS)');
    const keys = await loadPublicKeys(keyValues, io);
    const input = await loadInput(args.input, io);

    if (input.kind === 'key') {
      const result = await verifyKey(input.key, keys, { product: args.product, env: args.env });
      if (args.json) io.stdout(`${JSON.stringify({ type: 'license_key', ...result }, null, 2)}\n`);
      else if (result.valid) {
        const c = result.claims;
        io.stdout(
          `valid license key\n  license  ${c.lid}\n  product  ${c.pid}\n  env      ${c.env}\n  signed   by ${c.kid} on ${iso(c.iat)}\n`,
        );
      } else io.stdout(`invalid license key: ${result.reason}: ${result.message}\n`);
      return result.valid ? 0 : 1;
    }

    if (args.key === undefined) throw new UsageError('a license file is checked against its license key: give --key');
    const now = args.now ?? Math.floor(Date.now() / 1000);
    const result = await verifyLicenseFile(input.text, { publicKeys: keys, key: args.key, fingerprint: args.fingerprint, now });
    if (args.json) io.stdout(`${JSON.stringify({ type: 'license_file', ...result }, null, 2)}\n`);
    else if (result.valid) {
      const { license, device, issued, expires } = result.payload;
      io.stdout(
        [
          `valid license file (${result.alg}, signed by ${result.kid})`,
          `  license  ${license.id} (${String(license.status)})`,
          `  product  ${String(license.product)}`,
          `  device   ${device ? `${device.fingerprint} (${String(device.id)})` : 'not bound to a device'}`,
          `  issued   ${iso(issued)}`,
          `  expires  ${iso(expires)} (${relative(expires - now)})`,
          '',
        ].join('\n'),
      );
    } else io.stdout(`invalid license file: ${result.reason}: ${result.message}\n`);
    return result.valid ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`keymint-verify: ${error.message}\nrun keymint-verify --help for usage\n`);
      return 2;
    }
    io.stderr(`keymint-verify: ${(error as Error).message}\n`);
    return 2;
  }
}

function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    readFile: (path) => readFile(path, 'utf8'),
    env: process.env,
  };
}
