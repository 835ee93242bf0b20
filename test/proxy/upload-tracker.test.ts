import { describe, expect, it } from 'vitest';
import { UploadTracker, uploadPathKind } from '../../lib/proxy/upload-tracker.ts';
import { UpstreamAddress } from '../../lib/proxy/upstream-address.ts';

const MiB = 1024 * 1024;
const UPSTREAM = 'http://upstream.test:5000';
const START = '/v2/team/app/blobs/uploads/';
const tracker = (capacity?: number) => new UploadTracker(new UpstreamAddress(UPSTREAM), 4 * MiB, capacity);

describe('uploadPathKind', () => {
  it('tells an upload start from an upload session and from other paths', () => {
    expect(uploadPathKind('/v2/team/app/blobs/uploads/')).toBe('start');
    expect(uploadPathKind('/v2/team/app/blobs/uploads')).toBe('start');
    expect(uploadPathKind('/v2/team/app/blobs/uploads/u1')).toBe('session');
    expect(uploadPathKind('/v2/team/app/blobs/sha256:abc')).toBeUndefined();
    expect(uploadPathKind('/v2/team/app/manifests/latest')).toBeUndefined();
  });
});

describe('UploadTracker', () => {
  it('tracks an upload from the 202 to its POST: Location as a proxy path, offset, advertised chunk limit', () => {
    // Prepare
    const uploads = tracker();

    // Act
    const upload = uploads.observe('POST', START, 202, { location: `${UPSTREAM}/v2/team/app/blobs/uploads/u1?state=a`, range: '0-0', 'oci-chunk-max-length': String(MiB) });

    // Assess
    expect(upload).toEqual({ location: '/v2/team/app/blobs/uploads/u1?state=a', offset: 0, maxChunk: MiB });
    expect(uploads.get('/v2/team/app/blobs/uploads/u1')).toBe(upload);
  });

  it('does not track a POST answered otherwise (201: mounted), nor an upload whose Location is on another host', () => {
    const uploads = tracker();
    expect(uploads.observe('POST', START, 201, { location: '/v2/team/app/blobs/sha256:abc' })).toBeUndefined();
    expect(uploads.observe('POST', START, 202, { location: 'https://elsewhere.test/uploads/u2' })).toBeUndefined();
    expect(uploads.observe('POST', START, 202, {})).toBeUndefined();
    expect(uploads.get('/v2/team/app/blobs/sha256:abc')).toBeUndefined();
  });

  it('follows an upload to a new Location and offset after a 202, and forgets the old path', () => {
    const uploads = tracker();
    uploads.observe('POST', START, 202, { location: '/v2/team/app/blobs/uploads/u1', range: '0-0' });

    const upload = uploads.observe('PATCH', '/v2/team/app/blobs/uploads/u1', 202, { location: '/v2/team/app/blobs/uploads/u2?state=b', range: '0-1023' });

    expect(upload).toMatchObject({ location: '/v2/team/app/blobs/uploads/u2?state=b', offset: 1024 });
    expect(uploads.get('/v2/team/app/blobs/uploads/u1')).toBeUndefined();
    expect(uploads.get('/v2/team/app/blobs/uploads/u2')).toBe(upload);
  });

  it('marks the offset unknown after any other answer, and forgets the upload after PUT 2xx, DELETE or 404', () => {
    const uploads = tracker();
    const path = (id: string) => `/v2/team/app/blobs/uploads/${id}`;
    for (const id of ['u1', 'u2', 'u3', 'u4']) uploads.observe('POST', START, 202, { location: path(id), range: '0-99' });

    uploads.observe('PATCH', path('u1'), 503, {});
    uploads.observe('PUT', path('u2'), 201, {});
    uploads.observe('DELETE', path('u3'), 204, {});
    uploads.observe('GET', path('u4'), 404, {});

    expect(uploads.get(path('u1'))).toMatchObject({ offset: undefined });
    expect([path('u2'), path('u3'), path('u4')].map((key) => uploads.get(key))).toEqual([undefined, undefined, undefined]);
  });

  it('keeps an upload whose closing PUT failed, with its offset unknown', () => {
    const uploads = tracker();
    uploads.observe('POST', START, 202, { location: '/v2/team/app/blobs/uploads/u1', range: '0-99' });
    uploads.observe('PUT', '/v2/team/app/blobs/uploads/u1', 400, {});
    expect(uploads.get('/v2/team/app/blobs/uploads/u1')).toMatchObject({ offset: undefined });
  });

  it('reads `0-0` or no Range after an accepted chunk as the chunk\'s end, and a real Range as it says', () => {
    const uploads = tracker();
    const upload = uploads.adopt(new URL('http://proxy/v2/team/app/blobs/uploads/u1'), MiB);

    uploads.accepted(upload, { range: '0-0' }, 1);
    expect(upload.offset).toBe(1);
    uploads.accepted(upload, {}, 4096);
    expect(upload.offset).toBe(4096);
    uploads.accepted(upload, { range: '0-2047' }, 4096);
    expect(upload.offset).toBe(2048);
    uploads.accepted(upload, { range: '0-0' });
    expect(upload.offset).toBe(0);
  });

  it('takes an unreadable Range for an unknown offset instead of failing', () => {
    const uploads = tracker();
    const upload = uploads.observe('POST', START, 202, { location: '/v2/team/app/blobs/uploads/u1', range: 'bytes 5-9/10' });
    expect(upload).toMatchObject({ offset: undefined });
  });

  it('limits a request by its upload\'s own maximum, else the last advertised one, else the default', () => {
    const uploads = tracker();
    expect(uploads.limitFor(undefined)).toBe(4 * MiB);

    const upload = uploads.observe('POST', START, 202, { location: '/v2/team/app/blobs/uploads/u1', 'oci-chunk-max-length': String(MiB) })!;
    uploads.observe('GET', '/v2/', 200, { 'oci-chunk-max-length': String(2 * MiB) });

    expect(uploads.limitFor(upload)).toBe(MiB);
    expect(uploads.limitFor(undefined)).toBe(2 * MiB);
    uploads.observe('POST', START, 202, { location: '/v2/team/app/blobs/uploads/u2', 'oci-chunk-max-length': 'lots' });
    expect(uploads.get('/v2/team/app/blobs/uploads/u2')?.maxChunk).toBe(2 * MiB);
  });

  it('adopts an upload it did not see start, at the client\'s URL without the digest, offset unknown', () => {
    const uploads = tracker();
    const upload = uploads.adopt(new URL('http://proxy/v2/team/app/blobs/uploads/u9?state=s&digest=sha256:abc'), MiB);
    expect(upload).toEqual({ location: '/v2/team/app/blobs/uploads/u9?state=s', offset: undefined, maxChunk: MiB });
    expect(uploads.get('/v2/team/app/blobs/uploads/u9')).toBe(upload);
  });

  it('forgets the oldest uploads beyond its capacity', () => {
    const uploads = tracker(2);
    for (const id of ['u1', 'u2', 'u3']) uploads.observe('POST', START, 202, { location: `/v2/team/app/blobs/uploads/${id}` });
    expect(['u1', 'u2', 'u3'].map((id) => uploads.get(`/v2/team/app/blobs/uploads/${id}`) !== undefined)).toEqual([false, true, true]);
  });
});
