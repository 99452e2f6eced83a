import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createError } from '@bunryu/core';
import type { Principal, Role, TokenAuthenticator } from '@bunryu/platform/auth';
import type { VersionLifecycle } from './versions.ts';

export interface VersionEndpointOptions {
  lifecycle: VersionLifecycle;
  auth: TokenAuthenticator;
  /** Largest ONNX file accepted (bytes). */
  maxModelBytes: number;
  /** Who still uses a version (routes, experiments), asked before retiring it. */
  usersOf(model: string, version: string): Promise<string[]>;
}

const META_MAX_BYTES = 256 * 1024;

/**
 * SPEC §12 on the model-server: `PUT /v1/models/:name/versions/:version` (multipart `model` =
 * the ONNX bytes, `meta` = the model.json text; releaser), `GET` its status and gates, `DELETE`
 * to retire it (releaser).
 */
export async function registerVersionEndpoints(app: FastifyInstance, o: VersionEndpointOptions): Promise<void> {
  await app.register(multipart, { limits: { fileSize: o.maxModelBytes, files: 2, fields: 2, fieldSize: META_MAX_BYTES, parts: 4 } });
  const principals = new WeakMap<FastifyRequest, Principal>();
  const requires = (role: Role) => async (request: FastifyRequest) => {
    principals.set(request, o.auth.authorize(request.headers.authorization, role, request.ip));
  };
  type Params = { Params: { name: string; version: string } };

  app.get<Params>('/v1/models/:name/versions/:version', async (request) => o.lifecycle.view(request.params.name, request.params.version));

  app.put<Params>('/v1/models/:name/versions/:version', { onRequest: requires('releaser') }, async (request, reply) => {
    if (!request.isMultipart()) {
      throw createError('BUNRYU_UNSUPPORTED_MEDIA_TYPE', 'send multipart/form-data with a part "model" (the ONNX file) and a part "meta" (model.json)');
    }
    let onnx: Buffer | undefined;
    let meta: string | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.fieldname === 'model' && part.type === 'file') onnx = await part.toBuffer();
        else if (part.fieldname === 'meta') meta = part.type === 'file' ? (await part.toBuffer()).toString('utf8') : String(part.value);
        else if (part.type === 'file') await part.toBuffer(); // an unknown part is read and ignored
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'FST_REQ_FILE_TOO_LARGE') throw createError('BUNRYU_PAYLOAD_TOO_LARGE', `model: the ONNX file is larger than ${o.maxModelBytes} bytes (MODEL_MAX_BYTES)`);
      if (/FST_(FIELD|PARTS|FILES)_LIMIT|FST_FIELDS_LIMIT/.test(code)) throw createError('BUNRYU_PAYLOAD_TOO_LARGE', `meta: model.json is limited to ${META_MAX_BYTES} bytes and the form to the parts "model" and "meta"`);
      throw createError('BUNRYU_VALIDATION', `the multipart body cannot be read: ${(err as Error).message}`, { fields: [{ path: '(body)', message: (err as Error).message }] });
    }
    const missing = [...(onnx ? [] : ['model']), ...(meta === undefined ? ['meta'] : [])];
    if (missing.length > 0) {
      throw createError('BUNRYU_VALIDATION', `missing part${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, { fields: missing.map((path) => ({ path, message: 'required' })) });
    }
    const actor = principals.get(request)!.name;
    const view = await o.lifecycle.register({ name: request.params.name, version: request.params.version, onnx: onnx!, meta: meta!, actor });
    request.log.info({ model: view.model, version: view.version, status: view.status, actor }, 'model version registered');
    return reply.code(201).header('location', `/v1/models/${view.model}/versions/${view.version}`).send(view);
  });

  app.delete<Params>('/v1/models/:name/versions/:version', { onRequest: requires('releaser') }, async (request) => {
    const { name, version } = request.params;
    const actor = principals.get(request)!.name;
    const view = await o.lifecycle.retire(name, version, actor, () => o.usersOf(name, version));
    request.log.info({ model: name, version, actor }, 'model version retired');
    return view;
  });
}
