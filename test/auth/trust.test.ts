import { describe, expect, it } from 'vitest';
import { claimMismatch, isAllowedIssuerUrl, oidcSubject, trustsOfSubject, type Trust } from '../../lib/auth/trust.ts';

const trust = (claims: Trust['claims']): Trust => ({ name: 't', issuer: 'https://ci.example', audience: 'a', claims, grants: [], createdAt: 0 });

describe('OIDC trust rules', () => {
  it('accepts https issuers anywhere and http ones on loopback only', () => {
    for (const url of ['https://token.actions.githubusercontent.com', 'https://gitlab.example.com/', 'http://127.0.0.1:8080', 'http://localhost:9000', 'http://[::1]:7000']) {
      expect(isAllowedIssuerUrl(url), url).toBe(true);
    }
    for (const url of ['http://ci.example.com', 'http://10.0.0.1', 'ftp://ci.example.com', 'https://user:pw@ci.example.com', 'https://ci.example.com?x=1', 'ci.example.com', '']) {
      expect(isAllowedIssuerUrl(url), url).toBe(false);
    }
  });

  it('matches claim globs with * inside one /-separated part and ** across parts', () => {
    const rules = trust([
      { claim: 'repository', glob: 'acme/*' },
      { claim: 'ref', glob: 'refs/tags/v*' },
    ]);
    expect(claimMismatch(rules, { repository: 'acme/app', ref: 'refs/tags/v1.2.0' })).toBeUndefined();
    expect(claimMismatch(rules, { repository: 'acme/app/sub', ref: 'refs/tags/v1' })).toBe('claim repository="acme/app/sub" does not match');
    expect(claimMismatch(rules, { repository: 'acme/app', ref: 'refs/tags/v1/evil' })).toBe('claim ref="refs/tags/v1/evil" does not match');
    expect(claimMismatch(trust([{ claim: 'sub', glob: 'repo:acme/**' }]), { sub: 'repo:acme/app:ref:refs/heads/main' })).toBeUndefined();
  });

  it('compares numbers and booleans as text, and refuses missing or structured claims', () => {
    expect(claimMismatch(trust([{ claim: 'ref_protected', glob: 'true' }]), { ref_protected: true })).toBeUndefined();
    expect(claimMismatch(trust([{ claim: 'project_id', glob: '42' }]), { project_id: 42 })).toBeUndefined();
    expect(claimMismatch(trust([{ claim: 'groups', glob: 'admins' }]), { groups: ['admins'] })).toBe('claim groups is not a string');
    expect(claimMismatch(trust([{ claim: 'environment', glob: 'production' }]), {})).toBe('claim environment is missing');
  });

  it('names the trusts in the subject and reads them back; user names are never taken for one', () => {
    const subject = oidcSubject(['a', 'b'], 'repo:acme/app:ref:refs/heads/main');
    expect(subject).toBe('oidc:a+b:repo:acme/app:ref:refs/heads/main');
    expect(trustsOfSubject(subject)).toEqual(['a', 'b']);
    expect(trustsOfSubject('oidc')).toBeUndefined();
    expect(trustsOfSubject('alice')).toBeUndefined();
  });
});
