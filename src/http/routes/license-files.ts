import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { errorResponses } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;
const strict = { additionalProperties: false } as const;
const Ttl = Type.Integer({ minimum: 60, maximum: 366 * 86_400, description: "seconds the file may be trusted offline (default 14 days, within the policy's bounds)" });

const LicenseFile = Type.Object({
  object: Type.Literal('license_file'),
  certificate: Type.String({ description: 'the license file: -----BEGIN KEYMINT LICENSE FILE----- …' }),
  issued: S.Timestamp,
  expires: S.Timestamp,
});

/** `POST /v1/licenses/checkout`: the public license API's license files. */
export async function licenseFileRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/v1/licenses/checkout',
    {
      schema: {
        tags: ['license API'],
        summary: 'Check out a signed license file for offline use',
        body: Type.Object(
          {
            key: S.LicenseKey,
            fingerprint: Type.Optional(S.Fingerprint),
            ttl: Type.Optional(Ttl),
            encrypt: Type.Optional(Type.Boolean({ description: 'AES-256-GCM under SHA-256(key [‖ fingerprint])' })),
          },
          strict,
        ),
        response: { 200: LicenseFile, ...errors },
      },
    },
    async (req) => {
      const { device: _device, ...file } = await services.licenseFiles.checkout(req.body);
      return file;
    },
  );
}

/** `POST /v1/licenses/offline_activations` (admin): air-gapped activation, request text in, device-bound file out. */
export async function offlineActivationRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/v1/licenses/offline_activations',
    {
      schema: {
        tags: ['licenses'],
        security: [{ secretKey: [] }],
        summary: 'Turn an activation request from an offline machine into a device-bound license file',
        body: Type.Object(
          {
            request: Type.String({ minLength: 1, maxLength: 16_384, description: '-----BEGIN KEYMINT ACTIVATION REQUEST----- …' }),
            ttl: Type.Optional(Ttl),
            encrypt: Type.Optional(Type.Boolean({ description: 'default true: only that machine can read the file' })),
          },
          strict,
        ),
        response: { 200: Type.Object({ ...LicenseFile.properties, device: S.Device }), 201: Type.Object({ ...LicenseFile.properties, device: S.Device }), ...errors },
      },
    },
    async (req, reply) => {
      const { file, created } = await services.licenseFiles.activateOffline(req.scope, req.body.request, { ttl: req.body.ttl, encrypt: req.body.encrypt });
      // An activation always yields a device-bound file.
      return reply.code(created ? 201 : 200).send({ ...file, device: file.device! });
    },
  );
}
