/**
 * A product's email settings. Only what the vendor set is stored (JSON in
 * `products.email_settings`); defaults are filled in when read, so a better
 * default later reaches every product that never chose otherwise.
 */
export interface EmailSettings {
  /** Subject of the license delivery email; null: "Your license key for <product>". */
  subject: string | null;
  /** The opening paragraph of the delivery email; null: a plain thank-you. */
  thank_you: string | null;
  /** Plain text shown under the keys (installation steps, support address, …). */
  purchase_notes: string | null;
  /** The call-to-action button, e.g. "Download" → the download page. No URL, no button. */
  button_label: string | null;
  button_url: string | null;
  /** Tell the customer when a payment fails (off by default: Stripe may already do so). */
  send_payment_failed: boolean;
  /** Days before expiry to send `license.expiring_soon` and the reminder; 0 turns both off. */
  expiring_soon_days: number;
}

export type EmailSettingsInput = { [K in keyof EmailSettings]?: EmailSettings[K] | null };

export const DEFAULT_EMAIL_SETTINGS: Readonly<EmailSettings> = Object.freeze({
  subject: null,
  thank_you: null,
  purchase_notes: null,
  button_label: null,
  button_url: null,
  send_payment_failed: false,
  expiring_soon_days: 7,
});

export const DEFAULT_BUTTON_LABEL = 'Download';

export function parseEmailSettings(stored: string): EmailSettings {
  const set = JSON.parse(stored) as Partial<EmailSettings>;
  const out: EmailSettings = { ...DEFAULT_EMAIL_SETTINGS };
  for (const key of Object.keys(DEFAULT_EMAIL_SETTINGS) as Array<keyof EmailSettings>) {
    if (set[key] !== undefined && set[key] !== null) (out as unknown as Record<string, unknown>)[key] = set[key];
  }
  return out;
}

/** The stored JSON after applying `input` to `stored`: a null resets a setting to its default. */
export function mergeEmailSettings(stored: string, input: EmailSettingsInput | undefined): string {
  const current = JSON.parse(stored) as Record<string, unknown>;
  for (const [key, value] of Object.entries(input ?? {})) {
    if (!(key in DEFAULT_EMAIL_SETTINGS) || value === undefined) continue;
    if (value === null) delete current[key];
    else current[key] = value;
  }
  return JSON.stringify(current);
}
