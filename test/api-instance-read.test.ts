/**
 * GET one instance is answered from the instance's JSON encoded once (issue 21): the same
 * bytes and headers as fastify serializing the object, and never a stale encoding after a
 * change (a change replaces the instance object).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { present } from '../src/server/present.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

describe('GET one instance', () => {
  it('answers the bytes and headers a serialized object would have, and follows changes', async () => {
    t = await testApp();
    const put = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: '10.0.0.1', port: 80, tags: ['a', 'é'], metadata: { zone: 'z"1\\' } },
    });
    expect(put.status).toBe(200);
    for (const consistency of ['', '?consistency=serializable']) {
      const got = await t.req({ method: 'GET', url: `${INSTANCE_URL}/o1${consistency}` });
      expect(got.status).toBe(200);
      const instance = t.node.registry.getInstance('prod', 'orders', 'o1');
      expect(instance).toBeDefined();
      expect(got.text).toBe(JSON.stringify({ revision: 1, instance: present(instance!) }));
      expect(got.text).toBe(put.text);
      expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(got.headers['content-length']).toBe(String(Buffer.byteLength(got.text)));
      expect(got.headers.etag).toBe('"1"');
      expect(got.headers['x-rollcall-revision']).toBe('1');
    }
    const head = await t.req({ method: 'HEAD', url: `${INSTANCE_URL}/o1` });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(put.text)));
    expect(head.headers.etag).toBe('"1"');

    const patched = await t.req({
      method: 'PATCH',
      url: `${INSTANCE_URL}/o1`,
      headers: { 'if-match': '"1"' },
      payload: { weight: 7 },
    });
    expect(patched.status).toBe(200);
    const after = await t.req({ method: 'GET', url: `${INSTANCE_URL}/o1?consistency=serializable` });
    expect(after.body).toMatchObject({ revision: 2, instance: { weight: 7, version: 2 } });
    expect(after.text).toBe(patched.text);
    expect(after.headers.etag).toBe('"2"');
  });

  it('answers 404 INSTANCE_NOT_FOUND with the revision for an unknown id', async () => {
    t = await testApp();
    const res = await t.req({ method: 'GET', url: `${INSTANCE_URL}/nope` });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('INSTANCE_NOT_FOUND');
    expect(res.headers['x-rollcall-revision']).toBe('0');
  });
});
