/** What bench/server.ts and bench/validate.ts say to each other over the fork IPC channel. */

export type ServerMode = 'keymint' | 'bare';

/** Path of the bare route served in `bare` mode. */
export const BARE_PATH = '/bare';

/** Environment variable carrying, in `bare` mode, the JSON body the bare route answers with. */
export const BARE_BODY_ENV = 'BENCH_BARE_BODY';

export type ToServer = { type: 'cpu' };

export type FromServer =
  | { type: 'listening'; url: string }
  /** `process.cpuUsage()` of the server, in microseconds. */
  | { type: 'cpu'; user: number; system: number };
