// Writes the committed test vectors of docs/formats.md, using node:crypto
// alone (none of the SDK's code), from fixed TEST-ONLY Ed25519 keys and fixed
// IVs, so that running it again reproduces the same bytes.
//
//   node test/vectors/generate.mjs [output directory]   (default: this directory)
//
// Real license files use a random IV for every encryption; the fixed ones here
// only make the vectors reproducible.
import { createCipheriv, createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = resolve(process.argv[2] ?? dirname(fileURLToPath(import.meta.url)));
mkdirSync(out, { recursive: true });

const sha256 = (bytes) => createHash('sha256').update(bytes).digest();
const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const wrap76 = (text) => text.match(/.{1,76}/g).join('\n');
const armor = (label, bytes) => `-----BEGIN ${label}-----\n${wrap76(Buffer.from(bytes).toString('base64'))}\n-----END ${label}-----\n`;

/** An Ed25519 key pair from a 32-byte seed: PKCS#8 is a fixed 16-byte prefix and the seed (RFC 8410). */
function keyPair(label) {
  const seed = sha256(Buffer.from(label, 'utf8'));
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  return { seed, privateKey, publicKey, raw: publicKey.export({ format: 'jwk' }).x, pem: publicKey.export({ format: 'pem', type: 'spki' }) };
}

const ACTIVE = { id: 'kid_01kfq3m7d3w8z6c0v5y4x2t9ra', seedLabel: 'keymint test vectors: signing key 2 (active)', ...keyPair('keymint test vectors: signing key 2 (active)') };
const RETIRED = { id: 'kid_01jx0e6s1v0m2n3p4q5r6s7t8v', seedLabel: 'keymint test vectors: signing key 1 (retired)', ...keyPair('keymint test vectors: signing key 1 (retired)') };
const OTHER = { seedLabel: 'keymint test vectors: a key nobody trusts', ...keyPair('keymint test vectors: a key nobody trusts') };

const ed25519 = (privateKey, text) => sign(null, Buffer.from(text, 'utf8'), privateKey);

// ── license keys ──────────────────────────────────────────────────────────
const LICENSE_ID = 'lic_01kfq3n2b8c4d6e8f0g2h4j6k8';
const PRODUCT_ID = 'pdt_01kfq3k9s0t2v4w6x8y0z2a4b6';
const POLICY_ID = 'pol_01kfq3ma1c3e5g7h9k1m3n5p7q';
const IAT = 1767225600; // 2026-01-01T00:00:00Z

function licenseKey(signer, claimsExtra = {}) {
  const claims = { v: 1, lid: LICENSE_ID, pid: PRODUCT_ID, env: 'test', kid: signer.id, iat: IAT, ...claimsExtra };
  const payloadJson = JSON.stringify(claims);
  const signedPart = `KM1.${b64url(Buffer.from(payloadJson, 'utf8'))}`;
  const signature = ed25519(signer.privateKey, signedPart);
  return { claims, payload_json: payloadJson, signed_part: signedPart, signature_hex: signature.toString('hex'), key: `${signedPart}.${b64url(signature)}` };
}
const key = licenseKey(ACTIVE);
const keyByRetired = licenseKey(RETIRED);
const otherLicenseKey = licenseKey(ACTIVE, { lid: 'lic_01kfq3p4r6s8t0v2w4x6y8z0a2' });

// ── license files ─────────────────────────────────────────────────────────
const ISSUED = 1767225600;
const TTL = 1_209_600; // 14 days
const FINGERPRINT = 'fp-4c1d2a7e9b3f4e18a6d0c5b2e7f91a3d';

const license = {
  id: LICENSE_ID,
  object: 'license',
  status: 'active',
  product: PRODUCT_ID,
  policy: POLICY_ID,
  expires_at: 1798761600, // 2027-01-01
  grace_ends_at: null,
  maintenance_ends_at: null,
  max_devices: 3,
  active_devices: 1,
  floating: false,
  entitlements: ['pro', 'export'],
  metadata: {},
  created: 1767139200,
};
const device = {
  id: 'dev_01kfq3q8w0x2y4z6a8b0c2d4e6',
  object: 'device',
  license: LICENSE_ID,
  fingerprint: FINGERPRINT,
  name: 'Ada’s laptop',
  platform: 'macos',
  metadata: {},
  lease_expires_at: null,
  last_seen_at: 1767225600,
  created: 1767225000,
};

function licenseFile({ signer, payload, encryption }) {
  const payloadJson = JSON.stringify(payload);
  const plain = Buffer.from(payloadJson, 'utf8');
  let encBytes;
  let detail = {};
  if (encryption) {
    const aesKey = sha256(Buffer.concat([Buffer.from(encryption.licenseKey, 'utf8'), Buffer.from(encryption.fingerprint ?? '', 'utf8')]));
    const cipher = createCipheriv('aes-256-gcm', aesKey, encryption.iv);
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    const tag = cipher.getAuthTag();
    encBytes = Buffer.concat([encryption.iv, ciphertext, tag]);
    detail = { aes_key_input: encryption.fingerprint ? 'UTF-8(license key) ‖ UTF-8(fingerprint)' : 'UTF-8(license key)', aes_key_hex: aesKey.toString('hex'), iv_hex: encryption.iv.toString('hex'), tag_hex: tag.toString('hex') };
  } else {
    encBytes = plain;
  }
  const enc = b64url(encBytes);
  const sig = b64url(ed25519(signer.privateKey, `license/${enc}`));
  const envelope = { alg: encryption ? 'aes-256-gcm+ed25519' : 'base64+ed25519', kid: signer.id, enc, sig };
  const envelopeJson = JSON.stringify(envelope);
  return { payload, payload_json: payloadJson, ...detail, envelope, envelope_json: envelopeJson, certificate: armor('KEYMINT LICENSE FILE', Buffer.from(envelopeJson, 'utf8')) };
}

const plainPayload = { license, device: null, issued: ISSUED, expires: ISSUED + TTL, ttl: TTL };
const devicePayload = { license, device, issued: ISSUED, expires: ISSUED + TTL, ttl: TTL };
const plainFile = licenseFile({ signer: ACTIVE, payload: plainPayload });
const encryptedFile = licenseFile({ signer: ACTIVE, payload: plainPayload, encryption: { licenseKey: key.key, iv: Buffer.from('000102030405060708090a0b', 'hex') } });
const deviceFile = licenseFile({
  signer: ACTIVE,
  payload: devicePayload,
  encryption: { licenseKey: key.key, fingerprint: FINGERPRINT, iv: Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex') },
});
const retiredFile = licenseFile({ signer: RETIRED, payload: plainPayload });

// ── a signed response ─────────────────────────────────────────────────────
const T = 1767225660;
const NONCE = 'QmFzZTY0dXJsTm9uY2VGb3JUZXN0cw';
const responseBody = JSON.stringify({ object: 'license_validation', valid: true, code: 'VALID', message: 'valid', license, device, ts: T });
const responseMessagePrefix = `keymint-response/v1\nPOST /v1/licenses/validate\n${T}\n${NONCE}\n`;
const responseMessage = Buffer.concat([Buffer.from(responseMessagePrefix, 'utf8'), Buffer.from(responseBody, 'utf8')]);
const responseSig = b64url(sign(null, responseMessage, ACTIVE.privateKey));
const signedResponse = {
  request: { method: 'POST', path: '/v1/licenses/validate', headers: { 'Keymint-Accept-Signature': NONCE }, body: JSON.stringify({ key: key.key, fingerprint: FINGERPRINT }) },
  status: 200,
  headers: { 'Content-Type': 'application/json; charset=utf-8', 'Keymint-Signature': `t=${T},kid=${ACTIVE.id},nonce=${NONCE},sig=${responseSig}` },
  body: responseBody,
  signed_message_prefix: responseMessagePrefix,
  signed_message_sha256_hex: sha256(responseMessage).toString('hex'),
};

// ── an activation request ─────────────────────────────────────────────────
const activationJson = JSON.stringify({
  v: 1,
  key: key.key,
  fingerprint: FINGERPRINT,
  nonce: 'b2ZmbGluZS1hY3RpdmF0aW9uLW5vbmNl',
  name: 'Ada’s laptop',
  platform: 'macos',
  created: 1767225600,
});
const activationRequest = armor('KEYMINT ACTIVATION REQUEST', Buffer.from(activationJson, 'utf8'));

const signingKeysList = {
  object: 'list',
  data: [ACTIVE, RETIRED].map((k, i) => ({
    id: k.id,
    object: 'signing_key',
    algorithm: 'ed25519',
    public_key: k.raw,
    public_key_pem: k.pem,
    status: i === 0 ? 'active' : 'retired',
    created: i === 0 ? 1767139200 : 1735689600,
  })),
  has_more: false,
};

const vectors = {
  comment: 'Keymint wire-format test vectors (docs/formats.md). TEST-ONLY keys: the seeds are public. Generated by generate.mjs with node:crypto.',
  signing_keys: [ACTIVE, RETIRED].map((k) => ({ id: k.id, seed_label: k.seedLabel, seed_hex: k.seed.toString('hex'), public_key: k.raw, public_key_pem: k.pem })),
  untrusted_key: { seed_label: OTHER.seedLabel, seed_hex: OTHER.seed.toString('hex'), public_key: OTHER.raw },
  license_key: key,
  license_key_signed_by_retired_key: keyByRetired,
  license_key_of_another_license: otherLicenseKey,
  fingerprint: FINGERPRINT,
  verify_at: ISSUED + 3600,
  license_files: { plain: plainFile, encrypted: encryptedFile, device_bound: deviceFile, signed_by_retired_key: retiredFile },
  signed_response: signedResponse,
  activation_request: { json: activationJson, text: activationRequest },
};

const write = (name, content) => writeFileSync(join(out, name), content);
write('vectors.json', `${JSON.stringify(vectors, null, 2)}\n`);
write('signing-keys.json', `${JSON.stringify(signingKeysList, null, 2)}\n`);
write('public-key.txt', `${ACTIVE.raw}\n`);
write('public-key.pem', ACTIVE.pem);
write('license-key.txt', `${key.key}\n`);
write('license-file-plain.lic', plainFile.certificate);
write('license-file-encrypted.lic', encryptedFile.certificate);
write('license-file-device.lic', deviceFile.certificate);
write('signed-response.json', `${JSON.stringify(signedResponse, null, 2)}\n`);
write('activation-request.txt', activationRequest);
console.log(`wrote test vectors to ${out}`);
