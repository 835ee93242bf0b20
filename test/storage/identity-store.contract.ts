import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AccessToken, IdentityStore } from '../../lib/auth/identity.ts';

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

function token(user: string, fields: Partial<AccessToken> = {}): AccessToken {
  return { id: randomBytes(8).toString('hex'), user, secretHash: randomBytes(32).toString('hex'), createdAt: Date.now(), ...fields };
}

/** The contract every IdentityStore passes (memory, fs, DynamoDB). Names are unique per test: a store may be shared. */
export function identityStoreContract(backend: string, makeStore: () => Promise<IdentityStore>): void {
  describe(`IdentityStore contract: ${backend}`, () => {
    it('creates a user once and lists it', async () => {
      const store = await makeStore();
      const name = unique('u');
      expect(await store.createUser({ name, admin: true, createdAt: 1 })).toBe(true);
      expect(await store.createUser({ name, admin: false, createdAt: 2 })).toBe(false);
      expect(await store.getUser(name)).toEqual({ name, admin: true, createdAt: 1 });
      expect((await store.listUsers()).map((user) => user.name)).toContain(name);
    });

    it('stores tokens with scopes and expiry, lists them per user, touches and deletes them', async () => {
      const store = await makeStore();
      const [a, b] = [unique('a'), unique('b')];
      const first = token(a, { scopes: [{ glob: 'team/*', level: 'pull' }], expiresAt: 123 });
      const second = token(b);
      await store.createToken(first);
      await store.createToken(second);
      expect(await store.getToken(first.id)).toEqual(first);
      expect((await store.listTokens(a)).map((t) => t.id)).toEqual([first.id]);
      await store.touchToken(first.id, 5000);
      expect((await store.getToken(first.id))?.lastUsedAt).toBe(5000);
      expect(await store.deleteToken(first.id)).toBe(true);
      expect(await store.deleteToken(first.id)).toBe(false);
      expect(await store.getToken(first.id)).toBeUndefined();
      await store.touchToken(first.id, 6000);
      expect(await store.getToken(first.id)).toBeUndefined();
    });

    it('replaces the level of a grant on the same glob and removes grants', async () => {
      const store = await makeStore();
      const user = unique('g');
      await store.setGrant({ user, glob: 'team/*', level: 'pull' });
      await store.setGrant({ user, glob: 'team/*', level: 'push' });
      await store.setGrant({ user, glob: 'alice/**', level: 'admin' });
      expect((await store.listGrants(user)).sort((x, y) => x.glob.localeCompare(y.glob))).toEqual([
        { user, glob: 'alice/**', level: 'admin' },
        { user, glob: 'team/*', level: 'push' },
      ]);
      expect(await store.removeGrant(user, 'team/*')).toBe(true);
      expect(await store.removeGrant(user, 'team/*')).toBe(false);
      expect(await store.listGrants(user)).toEqual([{ user, glob: 'alice/**', level: 'admin' }]);
    });

    it('deletes a user with their tokens and grants', async () => {
      const store = await makeStore();
      const name = unique('d');
      await store.createUser({ name, admin: false, createdAt: 1 });
      const t = token(name);
      await store.createToken(t);
      await store.setGrant({ user: name, glob: 'x/*', level: 'pull' });
      expect(await store.deleteUser(name)).toBe(true);
      expect(await store.deleteUser(name)).toBe(false);
      expect(await store.getToken(t.id)).toBeUndefined();
      expect(await store.listGrants(name)).toEqual([]);
    });

    it('creates a team once, lists it and deletes it with its members and grants', async () => {
      const store = await makeStore();
      const [team, user] = [unique('t'), unique('m')];
      expect(await store.createTeam({ name: team, createdAt: 7 })).toBe(true);
      expect(await store.createTeam({ name: team, createdAt: 8 })).toBe(false);
      expect(await store.getTeam(team)).toEqual({ name: team, createdAt: 7, members: [], grants: [] });
      expect((await store.listTeams()).map((t) => t.name)).toContain(team);
      await store.createUser({ name: user, admin: false, createdAt: 1 });
      expect(await store.addTeamMember(team, user)).toBe('added');
      expect(await store.setTeamGrant(team, { glob: 'acme/*', level: 'push' })).toBe(true);
      expect(await store.deleteTeam(team)).toBe(true);
      expect(await store.deleteTeam(team)).toBe(false);
      expect(await store.getTeam(team)).toBeUndefined();
      expect((await store.listTeams()).map((t) => t.name)).not.toContain(team);
      expect((await store.getAccess(user))?.grants).toEqual([]);
    });

    it('adds members idempotently, names what is missing, and removes them', async () => {
      const store = await makeStore();
      const [team, alice, bob] = [unique('t'), unique('alice'), unique('bob')];
      await store.createTeam({ name: team, createdAt: 1 });
      await store.createUser({ name: alice, admin: false, createdAt: 1 });
      await store.createUser({ name: bob, admin: false, createdAt: 1 });
      expect(await store.addTeamMember(team, bob)).toBe('added');
      expect(await store.addTeamMember(team, alice)).toBe('added');
      expect(await store.addTeamMember(team, alice)).toBe('added');
      expect((await store.getTeam(team))?.members).toEqual([alice, bob].sort());
      expect(await store.addTeamMember(unique('none'), alice)).toBe('no-team');
      expect(await store.addTeamMember(team, unique('nobody'))).toBe('no-user');
      expect((await store.getTeam(team))?.members).toEqual([alice, bob].sort());
      expect(await store.removeTeamMember(team, alice)).toBe(true);
      expect(await store.removeTeamMember(team, alice)).toBe(false);
      expect(await store.removeTeamMember(unique('none'), alice)).toBe(false);
      expect((await store.getTeam(team))?.members).toEqual([bob]);
    });

    it('replaces the level of a team grant on the same glob and removes team grants', async () => {
      const store = await makeStore();
      const team = unique('t');
      expect(await store.setTeamGrant(team, { glob: 'acme/*', level: 'pull' })).toBe(false);
      await store.createTeam({ name: team, createdAt: 1 });
      expect(await store.setTeamGrant(team, { glob: 'acme/*', level: 'pull' })).toBe(true);
      expect(await store.setTeamGrant(team, { glob: 'acme/*', level: 'delete' })).toBe(true);
      expect(await store.setTeamGrant(team, { glob: 'acme/**', level: 'pull' })).toBe(true);
      expect((await store.getTeam(team))?.grants).toEqual([
        { glob: 'acme/*', level: 'delete' },
        { glob: 'acme/**', level: 'pull' },
      ]);
      expect(await store.removeTeamGrant(team, 'acme/*')).toBe(true);
      expect(await store.removeTeamGrant(team, 'acme/*')).toBe(false);
      expect(await store.removeTeamGrant(unique('none'), 'acme/*')).toBe(false);
      expect((await store.getTeam(team))?.grants).toEqual([{ glob: 'acme/**', level: 'pull' }]);
    });

    it("gives a user their own grants and their teams' grants, each with its source", async () => {
      const store = await makeStore();
      const [user, other, red, blue] = [unique('u'), unique('o'), unique('red'), unique('blue')];
      expect(await store.getAccess(user)).toBeUndefined();
      await store.createUser({ name: user, admin: false, createdAt: 3 });
      await store.createUser({ name: other, admin: false, createdAt: 3 });
      await store.setGrant({ user, glob: 'mine/*', level: 'admin' });
      for (const team of [red, blue]) await store.createTeam({ name: team, createdAt: 1 });
      await store.setTeamGrant(red, { glob: 'red/**', level: 'push' });
      await store.setTeamGrant(blue, { glob: 'blue/*', level: 'pull' });
      await store.addTeamMember(red, user);
      await store.addTeamMember(blue, other);
      expect(await store.getAccess(user)).toEqual({
        user: { name: user, admin: false, createdAt: 3 },
        grants: [
          { glob: 'mine/*', level: 'admin' },
          { glob: 'red/**', level: 'push', team: red },
        ],
      });
      await store.removeTeamMember(red, user);
      expect((await store.getAccess(user))?.grants).toEqual([{ glob: 'mine/*', level: 'admin' }]);
    });

    it('does not carry a membership over to a team recreated under the same name', async () => {
      const store = await makeStore();
      const [team, user] = [unique('t'), unique('u')];
      await store.createUser({ name: user, admin: false, createdAt: 1 });
      await store.createTeam({ name: team, createdAt: 1 });
      await store.addTeamMember(team, user);
      await store.deleteTeam(team);
      await store.createTeam({ name: team, createdAt: 2 });
      await store.setTeamGrant(team, { glob: 'x/*', level: 'push' });
      expect((await store.getTeam(team))?.members).toEqual([]);
      expect((await store.getAccess(user))?.grants).toEqual([]);
    });

    it('leaves no member behind when a user or a team is deleted while members are added', async () => {
      const store = await makeStore();
      for (let round = 0; round < 5; round++) {
        const [team, user] = [unique('race-t'), unique('race-u')];
        await store.createUser({ name: user, admin: false, createdAt: 1 });
        await store.createTeam({ name: team, createdAt: 1 });
        const [added] = await Promise.all([store.addTeamMember(team, user), round % 2 === 0 ? store.deleteUser(user) : store.deleteTeam(team)]);
        expect(['added', 'no-user', 'no-team']).toContain(added);
        if (round % 2 === 0) {
          expect((await store.getTeam(team))?.members).toEqual([]);
        } else {
          await store.createTeam({ name: team, createdAt: 2 });
          await store.setTeamGrant(team, { glob: 'x/*', level: 'push' });
          expect((await store.getAccess(user))?.grants).toEqual([]);
        }
      }
    });

    it('removes a deleted user from their teams', async () => {
      const store = await makeStore();
      const [team, user] = [unique('t'), unique('u')];
      await store.createUser({ name: user, admin: false, createdAt: 1 });
      await store.createTeam({ name: team, createdAt: 1 });
      await store.addTeamMember(team, user);
      await store.deleteUser(user);
      expect((await store.getTeam(team))?.members).toEqual([]);
      await store.createUser({ name: user, admin: false, createdAt: 2 });
      expect((await store.getAccess(user))?.grants).toEqual([]);
    });

    it('creates an OIDC trust once, lists it whole and deletes it', async () => {
      const store = await makeStore();
      const name = unique('ci');
      const trust = {
        name,
        issuer: 'https://token.actions.githubusercontent.com',
        audience: 'https://registry.example',
        claims: [
          { claim: 'repository', glob: 'acme/*' },
          { claim: 'ref', glob: 'refs/heads/main' },
        ],
        grants: [{ glob: 'acme/**', level: 'push' as const }],
        createdAt: 9,
      };
      expect(await store.createTrust(trust)).toBe(true);
      expect(await store.createTrust({ ...trust, audience: 'other' })).toBe(false);
      expect((await store.listTrusts()).filter((t) => t.name === name)).toEqual([trust]);
      expect(await store.deleteTrust(name)).toBe(true);
      expect(await store.deleteTrust(name)).toBe(false);
      expect((await store.listTrusts()).map((t) => t.name)).not.toContain(name);
    });

    it('marks globs public and private', async () => {
      const store = await makeStore();
      const glob = `${unique('p')}/**`;
      await store.setPublic(glob, true);
      await store.setPublic(glob, true);
      expect((await store.listPublic()).filter((g) => g === glob)).toEqual([glob]);
      await store.setPublic(glob, false);
      expect(await store.listPublic()).not.toContain(glob);
    });

    it('counts failures within a window and starts again after it', async () => {
      const store = await makeStore();
      const key = unique('ip');
      const now = Date.now();
      expect(await store.countFailures(key, now)).toBe(0);
      expect(await store.recordFailure(key, 60, now)).toBe(1);
      expect(await store.recordFailure(key, 60, now + 1000)).toBe(2);
      expect(await store.countFailures(key, now + 2000)).toBe(2);
      expect(await store.countFailures(key, now + 61_000)).toBe(0);
      expect(await store.recordFailure(key, 60, now + 61_000)).toBe(1);
    });
  });
}
