/**
 * Domain errors: what a service throws when a request cannot be carried out.
 * They carry a machine `code` (snake_case, as in the API's error shape), the
 * parameter at fault if any, and whether retrying could help. Services never
 * know about HTTP; one error handler in `http/errors.ts` maps `kind` to a status.
 *
 * A failed *check* (a license that does not validate) is not an error: it is
 * a value. These are for requests that cannot be honoured.
 */
export type ErrorKind =
  | 'invalid_request'
  | 'authentication'
  | 'permission'
  | 'not_found'
  | 'conflict'
  | 'rate_limit';

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const invalidRequest = (code: string, message: string, param: string | null = null) =>
  new DomainError('invalid_request', code, message, param);

export const notFound = (what: string, id: string, param: string | null = null) =>
  new DomainError('not_found', 'resource_missing', `no such ${what}: '${id}'`, param);

export const conflict = (code: string, message: string, param: string | null = null, retryable = false) =>
  new DomainError('conflict', code, message, param, retryable);

export const permission = (code: string, message: string) => new DomainError('permission', code, message);
