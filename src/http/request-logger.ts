import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

type LogArgs = Parameters<FastifyBaseLogger['info']>;

/**
 * A request's logger, made only when something is logged through it.
 *
 * Fastify gives every request a child logger bound to its id, and a pino
 * child costs a few microseconds to build (its bindings are serialized up
 * front). Most requests log nothing at the configured level (`info` lines
 * are off at `warn`), so that work was done for nothing on every request of
 * the hot path. This stands in for the child: a call at an enabled level
 * builds the real child once, with the same bindings and options, and every
 * call after goes to it; a call at a disabled level costs a level check.
 */
class DeferredChildLogger implements FastifyBaseLogger {
  private real: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): string {
    return this.real?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.child_().level = level;
  }

  fatal(...args: LogArgs): void {
    this.log('fatal', args);
  }
  error(...args: LogArgs): void {
    this.log('error', args);
  }
  warn(...args: LogArgs): void {
    this.log('warn', args);
  }
  info(...args: LogArgs): void {
    this.log('info', args);
  }
  debug(...args: LogArgs): void {
    this.log('debug', args);
  }
  trace(...args: LogArgs): void {
    this.log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.child_().child(bindings, options);
  }

  private log(level: Level, args: LogArgs): void {
    if (this.real === undefined && !this.parent.isLevelEnabled(level)) return;
    (this.child_()[level] as (...a: LogArgs) => void)(...args);
  }

  private child_(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings, this.options));
  }
}

/** Fastify's `childLoggerFactory`: per-request loggers built only when used (see DeferredChildLogger). */
export function deferredChildLoggers(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  // Only pino can say which levels are on, and only for the parent's level:
  // any other logger, or a child with a level of its own (a route's
  // `logLevel`), gets its real child at once.
  if (typeof (logger as Partial<Logger>).isLevelEnabled !== 'function' || options.level !== undefined) return logger.child(bindings, options);
  return new DeferredChildLogger(logger as Logger, bindings, options);
}
