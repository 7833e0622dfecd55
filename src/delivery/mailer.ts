import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';

/**
 * Where email goes: SMTP when `KEYMINT_SMTP_URL` is set, otherwise the local
 * mailbox, `<data dir>/mailbox/<email id>.eml`.
 *
 * The mailbox is files, not a table: it lives in the data directory with
 * the rest of the embedded set-up, every message is a standard RFC 5322
 * file that any mail client opens, the message bodies (license keys) stay
 * out of the database, and `keymint mail list|show` reads it without a
 * database connection. Both transports compose the message with nodemailer,
 * so a mailbox file is byte for byte what SMTP would have carried. A retried
 * send overwrites the same file: the mailbox never holds a message twice.
 */

export interface OutgoingEmail {
  /** The email's id: names the mailbox file. */
  id: string;
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  /** `<…@…>`, the same on every attempt, so a duplicate after a crash is recognizable. */
  messageId: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'mailbox';
  send(email: OutgoingEmail): Promise<void>;
  close(): void;
}

export interface MailerOptions {
  smtpUrl: string | null;
  dataDir: string;
}

export const mailboxDir = (dataDir: string) => path.join(dataDir, 'mailbox');

/** An SMTP failure that retrying cannot fix: the server refused the recipient for good (5xx to RCPT TO). */
export function isPermanentSmtpError(err: unknown): boolean {
  const e = err as { code?: string; command?: string; responseCode?: number };
  return e?.code === 'EENVELOPE' && e.command === 'RCPT TO' && typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode !== 503;
}

function message(email: OutgoingEmail) {
  return {
    from: email.from,
    to: email.to,
    subject: email.subject,
    text: email.text,
    html: email.html,
    messageId: email.messageId,
    headers: { 'X-Keymint-Email': email.id },
  };
}

export function createMailer(options: MailerOptions): Mailer {
  if (options.smtpUrl) {
    // A pool keeps a few connections open between messages; the timeouts keep
    // a dead server from holding a worker slot for minutes. Settings in the
    // URL's query string (e.g. `?pool=false&maxConnections=2`) take precedence.
    const transport = nodemailer.createTransport({
      url: options.smtpUrl,
      pool: true,
      maxConnections: 5,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return {
      kind: 'smtp',
      async send(email) {
        await transport.sendMail(message(email));
      },
      close: () => transport.close(),
    };
  }

  const dir = mailboxDir(options.dataDir);
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    kind: 'mailbox',
    async send(email) {
      const info = await transport.sendMail(message(email));
      await fs.promises.mkdir(dir, { recursive: true });
      const file = path.join(dir, `${email.id}.eml`);
      // Written whole or not at all: readers never see half a message.
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.promises.writeFile(tmp, info.message as Buffer, { mode: 0o600 });
      await fs.promises.rename(tmp, file);
    },
    close: () => transport.close(),
  };
}

/** Mailbox message ids, newest first (ids sort by time). */
export function listMailbox(dataDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(mailboxDir(dataDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith('.eml'))
    .map((n) => n.slice(0, -4))
    .sort()
    .reverse();
}

/** The raw message, or null when there is no such message. */
export function readMailboxMessage(dataDir: string, id: string): Buffer | null {
  // Ids are `eml_<ulid>`; anything else could walk out of the directory.
  if (!/^eml_[0-9a-z]{26}$/.test(id)) return null;
  try {
    return fs.readFileSync(path.join(mailboxDir(dataDir), `${id}.eml`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
