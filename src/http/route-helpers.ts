import { Type } from '@sinclair/typebox';
import { invalidRequest } from '../errors.js';

/** Every route's error responses, for the OpenAPI document: the shape of API.md (schema `Error`). */
export const errorResponses = { '4xx': Type.Ref('Error'), '5xx': Type.Ref('Error') };

/** Cursor parameters of a list route, as the repositories take them (Stripe allows one cursor at a time). */
export function page(q: { limit?: number; starting_after?: string; ending_before?: string }) {
  if (q.starting_after !== undefined && q.ending_before !== undefined) {
    throw invalidRequest('parameter_invalid', 'pass at most one of starting_after and ending_before', 'ending_before');
  }
  return { limit: q.limit ?? 10, starting_after: q.starting_after, ending_before: q.ending_before };
}

/** A page of objects as the API returns lists. */
export const list = <T>(result: { data: T[]; has_more: boolean }) => ({ object: 'list' as const, ...result });
