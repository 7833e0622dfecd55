import net from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server for tests (smtp-server), which parses every message it
 * accepts (mailparser). It can be stopped and started again on the same
 * port, to play a mail server that is down. Recipients whose address starts
 * with `bounce` are refused for good (550), as an unknown mailbox would be.
 */
export interface SmtpCatcher {
  port: number;
  /** `smtp://127.0.0.1:<port>`, for KEYMINT_SMTP_URL. */
  url: string;
  messages: ParsedMail[];
  /** Raw messages, as received. */
  raw: Buffer[];
  /** Envelope recipients of each message. */
  envelopes: string[][];
  running: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once `count` messages (in total) have arrived. */
  waitFor(count: number, ms?: number): Promise<ParsedMail[]>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function smtpCatcher(options: { start?: boolean } = {}): Promise<SmtpCatcher> {
  const port = await freePort();
  let server: SMTPServer | null = null;
  const catcher: SmtpCatcher = {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages: [],
    raw: [],
    envelopes: [],
    running: false,
    async start() {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        // Pooled client connections left open must not hold a test's teardown for the default 30 s.
        closeTimeout: 1_000,
        onRcptTo(address, _session, callback) {
          if (address.address.startsWith('bounce')) {
            const err = new Error('5.1.1 no such mailbox') as Error & { responseCode: number };
            err.responseCode = 550;
            return callback(err);
          }
          callback();
        },
        onData(stream, session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            const raw = Buffer.concat(chunks);
            simpleParser(raw).then(
              (parsed) => {
                catcher.raw.push(raw);
                catcher.envelopes.push(session.envelope.rcptTo.map((r) => r.address));
                catcher.messages.push(parsed);
                callback();
              },
              (err: Error) => callback(err),
            );
          });
        },
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, '127.0.0.1', () => resolve());
      });
      catcher.running = true;
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = null;
      catcher.running = false;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async waitFor(count, ms = 10_000) {
      const end = Date.now() + ms;
      while (catcher.messages.length < count) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${count} emails; got ${catcher.messages.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return catcher.messages;
    },
  };
  if (options.start !== false) await catcher.start();
  return catcher;
}
