import { describe, expect, it } from 'vitest';
import { addDuration, isDuration } from '../../src/licensing/duration.js';
import { licenseStatus } from '../../src/licensing/status.js';
import { validateLicense, type ValidationSubject } from '../../src/licensing/validation.js';

const NOW = Date.UTC(2026, 10, 24, 12) / 1000;

const license = (overrides: Partial<ValidationSubject> = {}): ValidationSubject => ({
  revoked_at: null,
  suspended_at: null,
  expires_at: null,
  grace_ends_at: null,
  product_id: 'pdt_1',
  product_code: 'app',
  perpetual_fallback: false,
  floating: false,
  require_fingerprint: false,
  entitlements: [],
  ...overrides,
});

describe('validateLicense precedence', () => {
  it('a license that is revoked, suspended, expired and for another product answers REVOKED', () => {
    const l = license({ revoked_at: NOW - 1, suspended_at: NOW - 1, expires_at: NOW - 1 });
    expect(validateLicense(l, null, { product: 'other' }, NOW).code).toBe('REVOKED');
  });

  it('a revocation scheduled for later (end of a grace period) is not in effect yet', () => {
    expect(validateLicense(license({ revoked_at: NOW + 60 }), null, {}, NOW).code).toBe('VALID');
    expect(validateLicense(license({ revoked_at: NOW + 60 }), null, {}, NOW + 60).code).toBe('REVOKED');
  });

  it('suspension outranks a product mismatch and expiry', () => {
    expect(validateLicense(license({ suspended_at: NOW, expires_at: NOW - 1 }), null, { product: 'x' }, NOW).code).toBe('SUSPENDED');
  });

  it('expiry outranks device and entitlement checks', () => {
    const l = license({ expires_at: NOW - 1, require_fingerprint: true });
    expect(validateLicense(l, null, { entitlements: ['x'] }, NOW).code).toBe('EXPIRED');
    expect(validateLicense({ ...l, perpetual_fallback: true }, null, { fingerprint: 'f' }, NOW).code).toBe('FALLBACK');
  });

  it('a missing device outranks missing entitlements', () => {
    expect(validateLicense(license(), null, { fingerprint: 'f', entitlements: ['x'] }, NOW).code).toBe('DEVICE_NOT_ACTIVATED');
  });

  it('a lapsed floating lease is HEARTBEAT_DEAD, a non-floating device has no lease to lapse', () => {
    expect(validateLicense(license({ floating: true }), { lease_expires_at: NOW }, { fingerprint: 'f' }, NOW).code).toBe('HEARTBEAT_DEAD');
    expect(validateLicense(license(), { lease_expires_at: null }, { fingerprint: 'f' }, NOW).code).toBe('VALID');
  });

  it('expiry is exclusive of the grace period end: valid one second before, expired at it', () => {
    const l = license({ expires_at: NOW - 100, grace_ends_at: NOW + 1 });
    expect(validateLicense(l, null, {}, NOW)).toMatchObject({ valid: true, code: 'VALID' });
    expect(validateLicense(l, null, {}, NOW + 1).code).toBe('EXPIRED');
  });
});

describe('licenseStatus', () => {
  it('derives every status from timestamps and the clock', () => {
    expect(licenseStatus(license(), false, NOW)).toBe('active');
    expect(licenseStatus(license({ expires_at: NOW }), false, NOW)).toBe('expired');
    expect(licenseStatus(license({ expires_at: NOW }), true, NOW)).toBe('fallback');
    expect(licenseStatus(license({ suspended_at: NOW }), false, NOW)).toBe('suspended');
    expect(licenseStatus(license({ revoked_at: NOW, suspended_at: NOW }), false, NOW)).toBe('revoked');
  });
});

describe('durations', () => {
  it('accepts N[d|w|m|y] and nothing else', () => {
    for (const ok of ['1d', '30d', '2w', '1m', '12m', '1y', '9999d']) expect(isDuration(ok)).toBe(true);
    for (const bad of ['0d', '1', 'd', '1h', '1.5d', '-1d', '10000d', ' 1d', '1D']) expect(isDuration(bad)).toBe(false);
  });

  it('adds days and weeks exactly, months and years by the calendar, clamping to the month end', () => {
    const jan31 = Date.UTC(2027, 0, 31, 9, 30) / 1000;
    expect(addDuration(jan31, '1d')).toBe(jan31 + 86_400);
    expect(addDuration(jan31, '2w')).toBe(jan31 + 14 * 86_400);
    expect(new Date(addDuration(jan31, '1m') * 1000).toISOString()).toBe('2027-02-28T09:30:00.000Z');
    expect(new Date(addDuration(jan31, '13m') * 1000).toISOString()).toBe('2028-02-29T09:30:00.000Z');
    const leapDay = Date.UTC(2028, 1, 29) / 1000;
    expect(new Date(addDuration(leapDay, '1y') * 1000).toISOString()).toBe('2029-02-28T00:00:00.000Z');
  });
});
