import { Command, InvalidArgumentError } from 'commander';
import { simpleParser, type AddressObject } from 'mailparser';
import type { Config } from '../config.js';
import { listMailbox, mailboxDir, readMailboxMessage } from './mailer.js';

const addresses = (a: AddressObject | AddressObject[] | undefined) => (a === undefined ? '' : (Array.isArray(a) ? a : [a]).map((x) => x.text).join(', '));

const stamp = (d: Date | undefined) => (d ? d.toISOString().replace('T', ' ').slice(0, 16) : '?');

/**
 * `keymint mail list|show`: the local mailbox, where email goes when no SMTP
 * server is configured. Reads the files only; no database needed.
 */
export function mailCommand(loadConfig: () => Config): Command {
  const mail = new Command('mail').description('read the local mailbox (email sent while KEYMINT_SMTP_URL is unset)');

  mail
    .command('list')
    .description('list emails in the local mailbox, newest first')
    .option('--limit <n>', 'how many to show', (value: string) => {
      if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive whole number');
      return Number(value);
    }, 20)
    .action(async (opts: { limit: number }) => {
      const cfg = loadConfig();
      if (cfg.smtpUrl) process.stderr.write('note: KEYMINT_SMTP_URL is set, so new email goes to SMTP, not to this mailbox\n');
      const ids = listMailbox(cfg.dataDir);
      if (ids.length === 0) {
        process.stdout.write(`The mailbox is empty (${mailboxDir(cfg.dataDir)}).\n`);
        return;
      }
      for (const id of ids.slice(0, opts.limit)) {
        const raw = readMailboxMessage(cfg.dataDir, id);
        if (!raw) continue;
        const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
        process.stdout.write(`${id}  ${stamp(parsed.date)}  ${addresses(parsed.to)}  ${parsed.subject ?? ''}\n`);
      }
      if (ids.length > opts.limit) process.stdout.write(`… and ${ids.length - opts.limit} older (--limit ${ids.length} shows all)\n`);
    });

  mail
    .command('show')
    .description('print one email: its headers and text part')
    .argument('<id>', 'the email id (eml_…), as `keymint mail list` shows it')
    .option('--html', 'print the HTML part instead of the text part')
    .option('--raw', 'print the whole message as stored (RFC 5322)')
    .action(async (id: string, opts: { html?: boolean; raw?: boolean }) => {
      const cfg = loadConfig();
      const raw = readMailboxMessage(cfg.dataDir, id.trim());
      if (!raw) {
        process.stderr.write(`keymint: no email ${id} in ${mailboxDir(cfg.dataDir)}\n`);
        process.exit(1);
      }
      if (opts.raw) {
        process.stdout.write(raw);
        return;
      }
      const parsed = await simpleParser(raw, { skipTextLinks: true });
      process.stdout.write(
        [
          `From:       ${addresses(parsed.from)}`,
          `To:         ${addresses(parsed.to)}`,
          `Date:       ${parsed.date?.toISOString() ?? '?'}`,
          `Subject:    ${parsed.subject ?? ''}`,
          `Message-ID: ${parsed.messageId ?? ''}`,
          '',
          opts.html ? (typeof parsed.html === 'string' ? parsed.html : '(no HTML part)') : (parsed.text ?? '(no text part)'),
        ].join('\n') + '\n',
      );
    });

  return mail;
}
