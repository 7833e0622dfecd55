import { DEFAULT_BUTTON_LABEL, type EmailSettings } from './email-settings.js';

/**
 * The emails Keymint sends, each as a subject, an HTML part and a text part.
 *
 * HTML is built only with the `html` tagged template below, which escapes
 * every interpolated value unless it is already `SafeHtml` (the output of
 * another `html` template). Product names, customer names and the vendor's
 * texts therefore reach the HTML part as text, never as markup; links come
 * only from http(s) URLs (validated where they are set) and are escaped as
 * attribute values.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function fragment(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += fragment(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Plain text as HTML paragraphs: blank lines separate paragraphs, single newlines become line breaks. */
export function paragraphs(text: string, style = P): SafeHtml {
  const blocks = text.split(/\r?\n\s*\r?\n/).map((b) => b.trim()).filter(Boolean);
  return new SafeHtml(blocks.map((b) => html`<p style="${style}">${new SafeHtml(b.split(/\r?\n/).map(escapeHtml).join('<br>'))}</p>`.value).join('\n'));
}

/** Subjects are single header lines. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').trim();

// Built once: constructing an Intl formatter costs more than rendering a whole email.
const DATE_FORMAT = new Intl.DateTimeFormat('en-US', { dateStyle: 'long', timeZone: 'UTC' });

export function formatDate(unix: number): string {
  return DATE_FORMAT.format(new Date(unix * 1000));
}

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

// ── layout ─────────────────────────────────────────────────────────────

const P = 'margin:0 0 16px;font-size:15px;line-height:1.5;color:#1f2933';
const SMALL = 'margin:0 0 8px;font-size:13px;line-height:1.5;color:#616e7c';
const KEY = 'display:block;padding:12px;background:#f5f7fa;border:1px solid #e4e7eb;border-radius:4px;font-family:Menlo,Consolas,monospace;font-size:13px;word-break:break-all;color:#1f2933';
const BUTTON = 'display:inline-block;padding:10px 18px;background:#2563eb;color:#ffffff;text-decoration:none;border-radius:4px;font-size:15px';

function button(label: string, url: string): SafeHtml {
  return html`<p style="margin:24px 0"><a href="${url}" style="${BUTTON}">${label}</a></p>`;
}

function link(label: string, url: string): SafeHtml {
  return html`<a href="${url}" style="color:#2563eb">${label}</a>`;
}

function layout(title: string, body: SafeHtml, footer: SafeHtml | null = null): string {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head>
<body style="margin:0;padding:0;background:#f5f7fa">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f5f7fa"><tr><td align="center" style="padding:24px">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border-radius:6px"><tr><td style="padding:32px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif">
${body}
${footer ?? ''}
</td></tr></table>
</td></tr></table>
</body>
</html>
`.value;
}

/** The text part: lines joined, runs of blank lines collapsed. */
function text(lines: Array<string | null | false | undefined>): string {
  return `${lines
    .filter((l): l is string => typeof l === 'string')
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}

const greeting = (name: string | null) => (name ? `Hi ${name},` : 'Hello,');

// ── messages ───────────────────────────────────────────────────────────

export interface DeliveredLicense {
  key: string;
  productName: string;
  expiresAt: number | null;
}

export interface LicenseDeliveryInput {
  productName: string;
  settings: EmailSettings;
  customerName: string | null;
  licenses: DeliveredLicense[];
  portalUrl: string;
}

export function licenseDelivery(input: LicenseDeliveryInput): RenderedEmail {
  const { settings, licenses } = input;
  const plural = licenses.length > 1;
  const subject = oneLine(settings.subject ?? `Your license ${plural ? 'keys' : 'key'} for ${input.productName}`);
  const thankYou = settings.thank_you ?? `Thank you for buying ${input.productName}!`;
  const intro = plural ? `Here are your ${licenses.length} license keys:` : 'Here is your license key:';
  const buttonLabel = settings.button_label ?? DEFAULT_BUTTON_LABEL;
  const showProduct = new Set(licenses.map((l) => l.productName)).size > 1;
  const describe = (l: DeliveredLicense) =>
    [showProduct ? l.productName : null, l.expiresAt !== null ? `valid until ${formatDate(l.expiresAt)}` : null].filter(Boolean).join(', ');

  const body = html`
<p style="${P}">${greeting(input.customerName)}</p>
${paragraphs(thankYou)}
<p style="${P}">${intro}</p>
${licenses.map((l) => {
  const about = describe(l);
  return html`${about ? html`<p style="${SMALL}">${about}</p>` : ''}<p style="margin:0 0 16px"><code style="${KEY}">${l.key}</code></p>
`;
})}
${settings.button_url ? button(buttonLabel, settings.button_url) : ''}
${settings.purchase_notes ? paragraphs(settings.purchase_notes) : ''}
<p style="${P}">You can see your licenses and devices at any time in the ${link('customer portal', input.portalUrl)}.</p>`;

  return {
    subject,
    html: layout(subject, body),
    text: text([
      greeting(input.customerName),
      '',
      thankYou,
      '',
      intro,
      '',
      ...licenses.flatMap((l) => {
        const about = describe(l);
        return [about ? `${about}:` : null, l.key, ''];
      }),
      settings.button_url ? `${buttonLabel}: ${settings.button_url}` : null,
      '',
      settings.purchase_notes,
      '',
      `Your licenses and devices, at any time: ${input.portalUrl}`,
    ]),
  };
}

export interface ExpiringSoonInput {
  productName: string;
  customerName: string | null;
  key: string;
  expiresAt: number;
  renewUrl: string;
}

export function expiringSoon(input: ExpiringSoonInput): RenderedEmail {
  const date = formatDate(input.expiresAt);
  const subject = oneLine(`Your ${input.productName} license expires on ${date}`);
  const body = html`
<p style="${P}">${greeting(input.customerName)}</p>
<p style="${P}">Your license for ${input.productName} expires on <strong>${date}</strong>. Renew it to keep using ${input.productName} without interruption.</p>
${button('Renew my license', input.renewUrl)}
<p style="${SMALL}">License key:</p>
<p style="margin:0 0 16px"><code style="${KEY}">${input.key}</code></p>`;
  return {
    subject,
    html: layout(subject, body),
    text: text([
      greeting(input.customerName),
      '',
      `Your license for ${input.productName} expires on ${date}. Renew it to keep using ${input.productName} without interruption.`,
      '',
      `Renew: ${input.renewUrl}`,
      '',
      'License key:',
      input.key,
    ]),
  };
}

export interface PaymentFailedInput {
  productName: string;
  customerName: string | null;
  portalUrl: string;
}

export function paymentFailed(input: PaymentFailedInput): RenderedEmail {
  const subject = oneLine(`Your payment for ${input.productName} failed`);
  const body = html`
<p style="${P}">${greeting(input.customerName)}</p>
<p style="${P}">We could not collect your latest payment for ${input.productName}. Please update your payment details so that your license stays active.</p>
${button('Update payment details', input.portalUrl)}
<p style="${SMALL}">If you have already done so, you can ignore this email.</p>`;
  return {
    subject,
    html: layout(subject, body),
    text: text([
      greeting(input.customerName),
      '',
      `We could not collect your latest payment for ${input.productName}. Please update your payment details so that your license stays active.`,
      '',
      `Update payment details: ${input.portalUrl}`,
      '',
      'If you have already done so, you can ignore this email.',
    ]),
  };
}

export interface MagicLinkInput {
  url: string;
  /** When the link stops working, if it does. */
  expiresAt: number | null;
}

export function magicLink(input: MagicLinkInput): RenderedEmail {
  const subject = 'Your sign-in link';
  const until = input.expiresAt !== null ? ` It works once, until ${new Date(input.expiresAt * 1000).toISOString().replace('T', ' ').slice(0, 16)} UTC.` : ' It works once.';
  const body = html`
<p style="${P}">Hello,</p>
<p style="${P}">Use the button below to sign in to the customer portal and manage your licenses.${until}</p>
${button('Sign in', input.url)}
<p style="${SMALL}">If you did not ask to sign in, you can ignore this email: nobody can sign in without this link.</p>`;
  return {
    subject,
    html: layout(subject, body),
    text: text([
      'Hello,',
      '',
      `Use this link to sign in to the customer portal and manage your licenses.${until}`,
      '',
      input.url,
      '',
      'If you did not ask to sign in, you can ignore this email: nobody can sign in without this link.',
    ]),
  };
}
